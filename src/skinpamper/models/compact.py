"""A compact VGG-style CNN for small inputs (28-64 px): the stronger small model.

Three stages of two 3x3 convolutions (BatchNorm, ReLU), each stage doubling the channels and ending in
2x2 max pooling, then global average pooling, dropout and the 7-way softmax. Compared with `seed`:
3x3 kernels with padding instead of unpadded 2x2 ones keep the border pixels (a third of a 28 px
lesion image), every convolution has a non-linearity, and global pooling replaces the 1M-parameter
Flatten -> Dense head, which is where seed overfits. Any input size works, so one design serves
28 and 64 px.
"""

from __future__ import annotations

import keras
from keras import layers

from skinpamper.models.registry import register_model

WIDTHS = (32, 64, 128)  # channels per stage; pooling halves the resolution after each


def _conv_bn_relu(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """A bias-free 3x3 conv (the BatchNorm supplies the offset), BatchNorm, ReLU."""
    x = layers.Conv2D(
        filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal", name=f"{name}_conv"
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


@register_model(
    "compact_cnn",
    default_size=28,
    description="VGG-style CNN for 28-64 px: 2x3x3 convs at 32/64/128 channels, global pooling",
)
def build_compact_cnn(
    image_size: int = 28, num_classes: int = 7, width: float = 1.0, dropout: float = 0.3
) -> keras.Model:
    """`width` scales every stage's channels (1.0: 32/64/128)."""
    inputs = keras.Input((image_size, image_size, 3))
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for stage, base in enumerate(WIDTHS, start=1):
        filters = max(8, round(base * width))
        x = _conv_bn_relu(x, filters, f"stage{stage}_a")
        x = _conv_bn_relu(x, filters, f"stage{stage}_b")
        x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name="compact_cnn")
