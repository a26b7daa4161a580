"""`feature_model(model)`: the same network, with the features its classifier reads as a second output.

Every registered model ends in a softmax Dense layer; what that layer reads (the pooled features) is
where out-of-distribution detection looks, because softmax confidence stays high far from the
training data. Wrappers keep what they wrap whole (the colour-constancy layer in front of a model, an
ensemble averaging members), so their features are those of the wrapped models, concatenated across
ensemble members. The new model shares the original's layers and weights; nothing is copied.
"""

from __future__ import annotations

import keras
from keras import layers


def _body(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if not isinstance(layer, layers.InputLayer)]


def feature_model(model: keras.Model) -> keras.Model:
    """images -> [probabilities, features]: `model`'s output and its final Dense layer's input."""
    body = _body(model)
    head = body[-1]
    if isinstance(head, layers.Dense):
        return keras.Model(model.inputs, [model.outputs[0], head.input], name=f"{model.name}_features")
    inputs = keras.Input(model.input_shape[1:], name="image")
    if isinstance(head, layers.Average):  # an ensemble: members side by side, probabilities averaged
        parts = [feature_model(member)(inputs) for member in body[:-1]]
        probabilities = head([p for p, _ in parts])
        features = layers.Concatenate(name="features")([f for _, f in parts])
    elif isinstance(head, keras.Model):  # a chain of layers ending in a wrapped model
        x = inputs
        for layer in body[:-1]:
            x = layer(x)
        probabilities, features = feature_model(head)(x)
    else:
        raise ValueError(f"{model.name}: ends in {type(head).__name__}, not a softmax Dense layer or a model")
    return keras.Model(inputs, [probabilities, features], name=f"{model.name}_features")


def ensemble_members(model: keras.Model) -> list[keras.Model]:
    """The member models of an ensemble (`training.ensemble.average_models`: members side by side,
    their probabilities averaged); empty for any other model."""
    body = _body(model)
    if isinstance(body[-1], layers.Average) and all(isinstance(m, keras.Model) for m in body[:-1]):
        return body[:-1]
    return []
