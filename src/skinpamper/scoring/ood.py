"""Out-of-distribution detection: how far an image's features lie from every class of the training split.

Softmax confidence stays high far from the training data (a portrait scored "mel 0.97"), so the
detector looks at the features the classifier reads instead: the Mahalanobis distance to the nearest
class mean, with one covariance shared by the classes (Lee et al., NeurIPS 2018), estimated on the
training split with Ledoit-Wolf shrinkage so that a few thousand images suffice for a few hundred
dimensions. Chosen by measurement (benchmarks/ood.py, compact_cnn at 28 px): AUROC 0.99-1.00 on
photos, faces, noise, flat colours, text and charts where max-softmax, energy and max-logit scored
0.35-0.70. The threshold is set on the validation split (`fit_threshold`), never on test.

The distance is stored as `centres` and `projection` with projection @ projection.T equal to the
shared precision matrix, so the score is ||f @ projection - centre||² for the nearest centre: a matrix
product, one subtraction and a minimum, the same in NumPy, in Keras and inside an ONNX graph.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.covariance import LedoitWolf

from skinpamper.errors import ConfigError

SCORE_NAME = "mahalanobis"  # what `score` computes; recorded with every threshold


@dataclass(frozen=True)
class OODDetector:
    """Class centres and the whitening projection of the training split's features."""

    centres: np.ndarray  # (C, D): class means of the features, already multiplied by `projection`
    projection: np.ndarray  # (D, D): Cholesky factor of the shared precision matrix

    def score(self, features: np.ndarray) -> np.ndarray:
        """(N, D) features -> (N,) squared Mahalanobis distance to the nearest class; higher is stranger."""
        projected = np.asarray(features, dtype=np.float64) @ self.projection
        distances = ((projected[:, None, :] - self.centres[None]) ** 2).sum(axis=-1)
        return distances.min(axis=1)

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.savez(handle, centres=self.centres, projection=self.projection)

    @classmethod
    def load(cls, path: Path) -> OODDetector:
        """Read `save`'s file; a damaged one is refused with its name."""
        try:
            with np.load(path) as arrays:
                centres, projection = arrays["centres"], arrays["projection"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise ConfigError(f"{path}: not a readable OOD detector ({exc})") from None
        if centres.ndim != 2 or projection.shape != (centres.shape[1], centres.shape[1]):
            raise ConfigError(f"{path}: OOD detector arrays have shapes {centres.shape}, {projection.shape}")
        return cls(centres, projection)


def fit_detector(features: np.ndarray, labels: np.ndarray) -> OODDetector:
    """Class means and a shrunk shared covariance of training features (classes absent get no centre)."""
    features = np.asarray(features, dtype=np.float64)
    classes = np.unique(labels)
    means = np.stack([features[labels == c].mean(axis=0) for c in classes])
    centred = features - means[np.searchsorted(classes, labels)]
    precision = LedoitWolf(assume_centered=True).fit(centred).precision_
    # Symmetrise before factorising: the estimator's inverse is symmetric only up to rounding.
    projection = np.linalg.cholesky((precision + precision.T) / 2)
    return OODDetector(means @ projection, projection)


def fit_threshold(val_scores: np.ndarray, keep: float) -> float:
    """The smallest validation score at or under which at least `keep` of the validation images fall."""
    if not 0 < keep < 1:
        raise ValueError(f"keep must be in (0, 1), got {keep}")
    return float(np.quantile(np.asarray(val_scores, dtype=np.float64), keep, method="higher"))
