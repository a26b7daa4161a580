"""A model's serving graph with its out-of-distribution score as a second output.

`with_ood_score(model, centres, projection)` reads the features the classifier sees
(`models.features`) and adds the squared Mahalanobis distance to the nearest training class, as
fitted by `skinpamper.scoring.ood`. Living in the graph, the score is computed the same way by Keras,
by the ONNX export and by an ONNX-only server, from one forward pass.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from skinpamper.models.features import feature_model


@keras.saving.register_keras_serializable(package="skinpamper")
class NearestCentreDistance(layers.Layer):
    """features (N, D) -> min over centres of ||features @ projection - centre||², shape (N,)."""

    def __init__(self, dimensions: int, centres: int, **kwargs: object) -> None:
        super().__init__(dtype="float32", **kwargs)
        self.dimensions, self.count = dimensions, centres
        self.projection = self.add_weight(shape=(dimensions, dimensions), trainable=False, name="projection")
        self.centres = self.add_weight(shape=(centres, dimensions), trainable=False, name="centres")

    def call(self, features: keras.KerasTensor) -> keras.KerasTensor:
        projected = ops.matmul(ops.cast(features, "float32"), self.projection)
        # ||a - c||² = ||a||² - 2 a.c + ||c||²: a matrix product instead of an (N, C, D) difference
        squared = ops.sum(ops.square(projected), axis=1, keepdims=True)
        cross = ops.matmul(projected, ops.transpose(self.centres))
        distances = squared - 2.0 * cross + ops.sum(ops.square(self.centres), axis=1)[None, :]
        return ops.maximum(ops.min(distances, axis=1), 0.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "dimensions": self.dimensions, "centres": self.count}


def with_ood_score(model: keras.Model, centres: np.ndarray, projection: np.ndarray) -> keras.Model:
    """images -> [probabilities, ood_score]: `model` unchanged, plus the detector on its features."""
    features = feature_model(model)
    inputs = keras.Input(model.input_shape[1:], name="images")
    probabilities, pooled = features(inputs)
    distance = NearestCentreDistance(projection.shape[0], len(centres), name="ood_score")
    score = distance(pooled)
    distance.set_weights([projection.astype(np.float32), centres.astype(np.float32)])
    return keras.Model(inputs, [probabilities, score], name=f"{model.name}_with_ood")
