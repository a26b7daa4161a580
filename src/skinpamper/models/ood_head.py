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
    """features (N, D) -> min over classes c of ||features @ projection_c - centre_c||², shape (N,),
    each projection D x K (K = D unless the detector reduced wide features to K components)."""

    def __init__(
        self, dimensions: int, centres: int, components: int | None = None, **kwargs: object
    ) -> None:
        super().__init__(dtype="float32", **kwargs)
        self.dimensions, self.count = dimensions, centres
        self.components = components or dimensions  # saved before reduction existed: square projections
        # (D, C * K): every class's projection side by side, so one matrix product projects for all
        self.projection = self.add_weight(
            shape=(dimensions, centres * self.components), trainable=False, name="projection"
        )
        self.centres = self.add_weight(shape=(centres * self.components,), trainable=False, name="centres")

    def call(self, features: keras.KerasTensor) -> keras.KerasTensor:
        projected = ops.matmul(ops.cast(features, "float32"), self.projection) - self.centres
        squared = ops.reshape(ops.square(projected), (-1, self.count, self.components))
        return ops.min(ops.sum(squared, axis=2), axis=1)

    def get_config(self) -> dict:
        config = {"dimensions": self.dimensions, "centres": self.count, "components": self.components}
        return {**super().get_config(), **config}


def with_ood_score(model: keras.Model, centres: np.ndarray, projections: np.ndarray) -> keras.Model:
    """images -> [probabilities, ood_score]: `model` unchanged, plus the detector on its features.

    `centres` (C, K) and `projections` (C, D, K) as `skinpamper.scoring.ood.OODDetector` holds them.
    """
    features = feature_model(model)
    inputs = keras.Input(model.input_shape[1:], name="images")
    probabilities, pooled = features(inputs)
    count, dims, components = projections.shape
    distance = NearestCentreDistance(dims, count, components, name="ood_score")
    score = distance(pooled)
    side_by_side = np.transpose(projections, (1, 0, 2)).reshape(dims, count * components)
    distance.set_weights([side_by_side.astype(np.float32), centres.reshape(-1).astype(np.float32)])
    return keras.Model(inputs, [probabilities, score], name=f"{model.name}_with_ood")
