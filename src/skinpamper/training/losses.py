"""The logit-adjusted cross-entropy: class balance through the loss's targets, not its weights.

Training on softmax(logits + log prior) (Menon et al. 2021, "Long-tail learning via logit
adjustment"; Ren et al. 2020, "balanced softmax") makes the model's own softmax estimate the class
posterior under equal class frequencies, which is what balanced accuracy scores. Class weights aim at
the same thing by scaling each image's gradient up to 13x for the rarest class, which makes the
gradient noisy; here every image counts once.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from skinpamper.classes import NUM_CLASSES


def log_prior(labels: np.ndarray) -> np.ndarray:
    """Log class frequencies of `labels` (the training part); a class absent there counts as one image,
    so its adjustment stays finite."""
    counts = np.maximum(np.bincount(labels, minlength=NUM_CLASSES), 1).astype(np.float64)
    return np.log(counts / counts.sum()).astype(np.float32)


@keras.saving.register_keras_serializable(package="skinpamper")
class LogitAdjustedCrossEntropy(keras.losses.Loss):
    """Sparse cross-entropy of softmax(log p + log prior) for a model that outputs probabilities p."""

    def __init__(
        self, log_prior: Sequence[float], name: str = "logit_adjusted_crossentropy", **kwargs: object
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.log_prior = [float(v) for v in log_prior]

    def call(self, y_true: keras.KerasTensor, y_pred: keras.KerasTensor) -> keras.KerasTensor:
        log_probs = ops.log(ops.clip(y_pred, keras.config.epsilon(), 1.0))
        adjusted = log_probs + ops.convert_to_tensor(self.log_prior, dtype=log_probs.dtype)
        return keras.losses.sparse_categorical_crossentropy(y_true, adjusted, from_logits=True)

    def get_config(self) -> dict:
        return {**super().get_config(), "log_prior": self.log_prior}
