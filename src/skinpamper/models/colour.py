"""Shades-of-grey colour constancy as the first layer of a model.

Dermoscopy photos differ in illuminant and camera colour response between clinics and devices, and a
network trained on one source learns that cast along with the lesion. Dividing each channel by the
image's own Minkowski p-mean of that channel (Finlayson & Trezzi 2004; p = 6 as in Barata et al.
2015 and Gessert et al.'s winning ISIC 2019 entry) removes a per-channel gain before the network
sees the image. It uses the image alone, so it cannot leak statistics across the split, and living
inside the model it is applied the same way in training, evaluation, prediction and export.
"""

from __future__ import annotations

import keras
from keras import layers, ops

POWER = 6.0  # p of the Minkowski mean: 1 is grey-world, infinity is max-RGB (white patch)
MOMENT_FLOOR = 1e-30  # smallest mean of x**p used: float32 keeps it, and its p-th root stays above 0


@keras.saving.register_keras_serializable(package="skinpamper")
class ShadesOfGrey(layers.Layer):
    """Images 0..255 in, the same images with each channel's p-mean set to their common mean, 0..255."""

    def __init__(self, power: float = POWER, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.power = power

    def call(self, images: keras.KerasTensor) -> keras.KerasTensor:
        x = images / 255.0
        moment = ops.mean(ops.power(x, self.power), axis=(1, 2), keepdims=True)
        # floored so that a black channel gives 0 rather than 0 / 0
        illuminant = ops.power(ops.maximum(moment, MOMENT_FLOOR), 1.0 / self.power)
        grey = ops.mean(illuminant, axis=-1, keepdims=True)
        return ops.clip(x * grey / illuminant, 0.0, 1.0) * 255.0

    def get_config(self) -> dict:
        return {**super().get_config(), "power": self.power}


def with_colour_constancy(model: keras.Model) -> keras.Model:
    """`model` behind a ShadesOfGrey layer, kept whole inside the new model under its own name."""
    inputs = keras.Input(model.input_shape[1:], name="image")
    outputs = model(ShadesOfGrey(name="shades_of_grey")(inputs))
    return keras.Model(inputs, outputs, name=f"{model.name}_sog")
