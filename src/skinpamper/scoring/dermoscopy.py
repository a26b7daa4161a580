"""Is this a dermoscopy image at all? A linear detector on the classifier's features.

The Mahalanobis distance (`scoring.ood`) measures how far an image lies from the training split, and
dermoscopy from another device lies far too: it refused 45% of a second clinic's images, mostly nevi
it classified well. So the two questions are asked apart. This detector answers "not dermoscopy"
(refuse); the distance, beside it, answers "dermoscopy, but unlike the training images" (answer with
a warning: `unfamiliar`). It is a logistic regression on the same pooled features, fitted at the end
of training on positives from the training split, each also under a simulated clinic shift
(`scoring.shifts`: rim, zoom-out, colour cast, JPEG, blur, aspect), and negatives from
`scoring.not_dermoscopy`; its threshold keeps `keep` of the validation split, plain and shifted.

Stored as one weight vector and a bias with the feature standardisation folded in, so its score, the
log-odds of "not dermoscopy", is one matrix product in NumPy, in Keras and in the ONNX graph.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from skinpamper.errors import ConfigError

SCORE_NAME = "not_dermoscopy_log_odds"
C = 0.01  # inverse L2 strength on standardised features: 1,280 features, a few thousand images
KEEP = 0.99  # share of validation dermoscopy (plain and shifted) the threshold accepts
# Spreads are floored at this share of the features' overall size (root mean square of them all), the
# scale of the float32 rounding by which Keras and ONNX compute them apart (EfficientNetB0 after one
# epoch from scratch: 1e-6 of it). That model's features all varied by 3e-5 to 7e-5 of it, so dividing
# by their spreads fitted the rounding, and the two log-odds differed by 5%. Of a trained Lite0's live
# features, 1% vary by less than the floor (300 HAM10000 images at 128 px): they are regularised a
# little more; the rest are standardised as before.
SPREAD_FLOOR = 1e-3


@dataclass(frozen=True)
class DermoscopyDetector:
    """log-odds that an image is not dermoscopy = features @ weights + bias."""

    weights: np.ndarray  # (D,)
    bias: float

    def score(self, features: np.ndarray) -> np.ndarray:
        """(N, D) features -> (N,) log-odds of "not dermoscopy"; higher is stranger."""
        return np.asarray(features, dtype=np.float64) @ self.weights + self.bias

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.savez(handle, weights=self.weights, bias=np.float64(self.bias))

    @classmethod
    def load(cls, path: Path) -> DermoscopyDetector:
        """Read `save`'s file; a damaged one is refused."""
        try:
            with np.load(path) as arrays:
                weights, bias = arrays["weights"], float(arrays["bias"])
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            raise ConfigError(f"{path}: not a readable dermoscopy detector ({exc})") from None
        if weights.ndim != 1 or not np.all(np.isfinite(weights)) or not np.isfinite(bias):
            raise ConfigError(f"{path}: dermoscopy detector weights of shape {weights.shape} are not usable")
        return cls(weights.astype(np.float64), bias)


def fit_dermoscopy_detector(positives: np.ndarray, negatives: np.ndarray, c: float = C) -> DermoscopyDetector:
    """Logistic regression of "not dermoscopy" on standardised features, the two kinds weighted
    equally whatever their counts; the standardisation is folded into the weights.
    Spreads are floored at SPREAD_FLOOR of the features' overall size."""
    features = np.concatenate([positives, negatives]).astype(np.float64)
    labels = np.r_[np.zeros(len(positives)), np.ones(len(negatives))]
    mean = features.mean(axis=0)
    spread = np.maximum(features.std(axis=0), SPREAD_FLOOR * np.sqrt(np.mean(features**2)))
    spread[spread == 0] = 1.0  # features that are all 0 carry nothing
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    model.fit((features - mean) / spread, labels)
    weights = model.coef_[0] / spread
    return DermoscopyDetector(weights, float(model.intercept_[0] - mean @ weights))
