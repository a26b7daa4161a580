"""A model's serving graph with its out-of-distribution scores as further outputs.

`with_ood_score(model, centres, projection, dermoscopy)` reads the features the classifier sees
(`models.features`) and adds the squared Mahalanobis distance to the nearest training class, as
fitted by `skinpamper.scoring.ood`, and, given the dermoscopy detector's weights and bias
(`skinpamper.scoring.dermoscopy`), its log-odds of "not dermoscopy". Living in the graph, the scores
are computed the same way by Keras, by the ONNX export and by an ONNX-only server, from one forward
pass.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from skinpamper.models.features import feature_model


@keras.saving.register_keras_serializable(package="skinpamper")
class NearestCentreDistance(layers.Layer):
    """features (N, D) -> min over classes c of ||(features - mean_c) @ projection_c||², shape (N,).

    Each class mean is subtracted before its projection (D x K), as `OODDetector.score` does: in
    float32, projecting first loses the distance in the difference of two large numbers.
    """

    def __init__(
        self, dimensions: int, centres: int, components: int | None = None, **kwargs: object
    ) -> None:
        super().__init__(dtype="float32", **kwargs)
        self.dimensions, self.count = dimensions, centres
        self.components = components or dimensions
        self.projections = self.add_weight(
            shape=(centres, dimensions, self.components), trainable=False, name="projections"
        )
        self.means = self.add_weight(shape=(centres, 1, dimensions), trainable=False, name="means")

    def call(self, features: keras.KerasTensor) -> keras.KerasTensor:
        centred = ops.expand_dims(ops.cast(features, "float32"), 0) - self.means  # (C, N, D)
        projected = ops.matmul(centred, self.projections)  # (C, N, K)
        return ops.min(ops.sum(ops.square(projected), axis=2), axis=0)

    def get_config(self) -> dict:
        config = {"dimensions": self.dimensions, "centres": self.count, "components": self.components}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="skinpamper")
class LinearScore(layers.Layer):
    """features (N, D) -> features @ weights + bias, shape (N,): a logistic regression's log-odds."""

    def __init__(self, dimensions: int, **kwargs: object) -> None:
        super().__init__(dtype="float32", **kwargs)
        self.dimensions = dimensions
        self.kernel = self.add_weight(shape=(dimensions, 1), trainable=False, name="weights")
        self.bias = self.add_weight(shape=(1,), trainable=False, name="bias")

    def call(self, features: keras.KerasTensor) -> keras.KerasTensor:
        return ops.squeeze(ops.matmul(ops.cast(features, "float32"), self.kernel), axis=1) + self.bias

    def get_config(self) -> dict:
        return {**super().get_config(), "dimensions": self.dimensions}


def with_ood_score(
    model: keras.Model,
    means: np.ndarray,
    projections: np.ndarray,
    dermoscopy: tuple[np.ndarray, float] | None = None,
) -> keras.Model:
    """images -> [probabilities, ood_score(, not_dermoscopy)]: `model` unchanged, plus the detectors
    on its features.

    `means` (C, D) and `projections` (C, D, K) as `skinpamper.scoring.ood.OODDetector` holds them;
    `dermoscopy` the (D,) weights and bias of `skinpamper.scoring.dermoscopy.DermoscopyDetector`.
    """
    features = feature_model(model)
    inputs = keras.Input(model.input_shape[1:], name="images")
    probabilities, pooled = features(inputs)
    outputs = [probabilities, *detector_outputs(pooled, means, projections, dermoscopy)]
    return keras.Model(inputs, outputs, name=f"{model.name}_with_ood")


def detector_outputs(
    features: keras.KerasTensor,
    means: np.ndarray,
    projections: np.ndarray,
    dermoscopy: tuple[np.ndarray, float] | None = None,
) -> list[keras.KerasTensor]:
    """[ood_score(, not_dermoscopy)] computed from `features` (N, D), with the arguments of
    `with_ood_score`; shared with the ONNX export's ensemble head, which reads member features."""
    count, dims, components = projections.shape
    distance = NearestCentreDistance(dims, count, components, name="ood_score")
    outputs = [distance(features)]
    distance.set_weights([projections.astype(np.float32), means.reshape(count, 1, dims).astype(np.float32)])
    if dermoscopy is not None:
        weights, bias = dermoscopy
        linear = LinearScore(dims, name="not_dermoscopy")
        outputs.append(linear(features))
        linear.set_weights([weights.reshape(dims, 1).astype(np.float32), np.array([bias], dtype=np.float32)])
    return outputs


def ensemble_head(
    members: list[keras.Model], detectors: tuple[np.ndarray, np.ndarray, tuple | None] | None
) -> keras.Model:
    """What an ensemble's serving model computes after its members: [p_1..p_n(, f_1..f_n)] ->
    [mean probabilities(, ood_score(, not_dermoscopy))], `members` being `feature_model`s (or the
    members themselves without detectors). With them, the ONNX export converts one member at a time.
    """
    probabilities = [
        keras.Input(member.output_shape[0][1:] if detectors else member.output_shape[1:], name=f"p{i}")
        for i, member in enumerate(members, 1)
    ]
    average = layers.Average(dtype="float32", name="predictions")(probabilities)
    if detectors is None:
        return keras.Model(probabilities, average, name="ensemble_head")
    features = [keras.Input(member.output_shape[1][1:], name=f"f{i}") for i, member in enumerate(members, 1)]
    pooled = layers.Concatenate(name="features")(features)
    outputs = [average, *detector_outputs(pooled, *detectors)]
    return keras.Model([*probabilities, *features], outputs, name="ensemble_head")
