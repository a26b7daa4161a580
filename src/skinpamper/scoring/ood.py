"""Out-of-distribution detection: how far an image's features lie from every class of the training split.

Softmax confidence stays high far from the training data (a portrait scored "mel 0.97"), so the
detector looks at the features the classifier reads instead: the Mahalanobis distance to the nearest
class, each class with its own covariance estimated on the training split with Ledoit-Wolf shrinkage
(a few dozen images suffice for a hundred dimensions; classes with fewer than MIN_OWN images use the
covariance pooled over all classes). Chosen by measurement (benchmarks/ood.py, compact_cnn at 28 px):
AUROC 0.99-1.00 on photos, faces, other medical images, noise, flat colours, text and charts, where
max-softmax and energy scored 0.35-0.70; one covariance shared by the classes (Lee et al., NeurIPS
2018) ranked as well but, shaped by the naevi that are two thirds of the data, refused 82% of the
test split's vascular lesions, against 14% with a covariance per class. The threshold is set on the
validation split (`fit_threshold`), never on test.

Each class is stored as a `projection` (the Cholesky factor of its precision matrix) and its
`centre` already projected, so the score is min over classes of ||f @ projection_c - centre_c||²: a
matrix product, one subtraction and a minimum, the same in NumPy, in Keras and inside an ONNX graph.

Wide features (a pretrained backbone's 1,280, three of them side by side in an ensemble) are first
reduced to their MAX_COMPONENTS leading principal components on the training split, folded into each
class's projection (D x K): per-class covariances of 1,280 dimensions from a hundred images are
mostly shrinkage, and seven 1,280 x 1,280 matrices (46 MB, 138 MB for three members) made the ONNX
export of a three-member EfficientNet-Lite0 run run out of 24 GB.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.covariance import LedoitWolf

from skinpamper.errors import ConfigError

SCORE_NAME = "mahalanobis"  # what `score` computes; recorded with every threshold


MIN_OWN = 20  # training images a class needs for its own covariance; below, the pooled one
# Features wider than this are reduced by PCA first; 512 keeps every scratch model's own features
# (compact_cnn: 128, three members 384; seed: 256) as they were measured.
MAX_COMPONENTS = 512
FLAT = 1e-3  # a component whose spread is below this share of the largest one's is left out
# Features whose spread is below this share of their size vary by little more than float32 rounding
# (1.2e-7 of their size; MobileNetV3Small after one epoch from scratch varied by 5e-10 around 2e-3).
# Whitening magnifies that rounding into scores that differ between Keras and ONNX by more than the
# export's parity limit allows, so such a detector is flat: every image scores 0, nothing is refused.
# At 5e-5, rounding is under 0.25% of the spread.
RESOLUTION = 5e-5


@dataclass(frozen=True)
class OODDetector:
    """Per class: the training split's mean features and the whitening projection around them.

    The score subtracts each class mean before projecting, never after: whitening multiplies by the
    inverse square root of small variances, and projecting first would subtract two large, nearly equal
    numbers, which float32 (Keras, ONNX) gets wrong by more than the distance itself on weakly trained
    features.
    """

    means: np.ndarray  # (C, D): class means of the features
    projections: np.ndarray  # (C, D, K): principal components (when K < D) times Cholesky factors

    def score(self, features: np.ndarray) -> np.ndarray:
        """(N, D) features -> (N,) squared Mahalanobis distance to the nearest class; higher is stranger."""
        centred = np.asarray(features, dtype=np.float64)[:, None, :] - self.means[None]
        projected = np.einsum("ncd,cdk->nck", centred, self.projections)
        return (projected**2).sum(axis=-1).min(axis=1)

    @property
    def flat(self) -> bool:
        """Fitted on features that did not vary beyond rounding: it scores every image 0."""
        return not self.projections.any()

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.savez(handle, means=self.means, projections=self.projections)

    @classmethod
    def load(cls, path: Path) -> OODDetector:
        """Read `save`'s file (or an older one holding projected centres); a damaged one is refused."""
        try:
            with np.load(path) as arrays:
                projections = arrays["projections"]
                means = (
                    arrays["means"] if "means" in arrays.files else _means_of(arrays["centres"], projections)
                )
        except (OSError, ValueError, KeyError, EOFError, np.linalg.LinAlgError, zipfile.BadZipFile) as exc:
            raise ConfigError(f"{path}: not a readable OOD detector ({exc})") from None
        count, dims = means.shape if means.ndim == 2 else (0, 0)
        if count == 0 or projections.ndim != 3 or projections.shape[:2] != (count, dims):
            raise ConfigError(f"{path}: OOD detector arrays have shapes {means.shape}, {projections.shape}")
        return cls(means, projections)


def _means_of(centres: np.ndarray, projections: np.ndarray) -> np.ndarray:
    """Class means for detectors saved before means were kept, which hold centres = mean @ projection:
    any u with u @ projection = centre scores the same, and least squares finds one (the mean itself
    when the projection is square, as Cholesky factors are)."""
    if centres.ndim != 2 or projections.ndim != 3 or projections.shape[::2] != centres.shape:
        raise ValueError(f"centres {centres.shape} do not fit projections {projections.shape}")
    return np.stack(
        [np.linalg.lstsq(p.T, c, rcond=None)[0] for c, p in zip(centres, projections, strict=True)]
    )


def _whitening(centred: np.ndarray) -> np.ndarray:
    """Cholesky factor L of the shrunk precision matrix of already centred rows: x @ L whitens x."""
    precision = LedoitWolf(assume_centered=True).fit(centred).precision_
    return np.linalg.cholesky((precision + precision.T) / 2)  # symmetric only up to rounding


def fit_detector(features: np.ndarray, labels: np.ndarray) -> OODDetector:
    """One Gaussian per class present in the training split (classes absent get no centre), in the
    leading MAX_COMPONENTS principal components when the features are wider; a flat detector when the
    features vary by rounding only (see RESOLUTION)."""
    features = np.asarray(features, dtype=np.float64)
    classes = np.unique(labels)
    feature_means = np.stack([features[labels == c].mean(axis=0) for c in classes])
    if features.std(axis=0).max() <= RESOLUTION * np.sqrt(np.mean(features**2)):
        return OODDetector(feature_means, np.zeros((len(classes), features.shape[1], 1)))
    basis = _principal_components(features, MAX_COMPONENTS)
    reduced = features @ basis
    means = np.stack([reduced[labels == c].mean(axis=0) for c in classes])
    pooled = _whitening(reduced - means[np.searchsorted(classes, labels)])
    whitening = np.stack(
        [
            _whitening(reduced[labels == c] - mean) if np.sum(labels == c) >= MIN_OWN else pooled
            for c, mean in zip(classes, means, strict=True)
        ]
    )
    return OODDetector(feature_means, np.einsum("dk,cke->cde", basis, whitening))


def _principal_components(features: np.ndarray, most: int) -> np.ndarray:
    """(D, K) orthonormal basis of the K <= `most` leading principal components that carry variance
    (directions that a small training split leaves flat would be whitened by dividing by ~0); the
    identity when the features are narrow enough."""
    dims = features.shape[1]
    if dims <= most:
        return np.eye(dims)
    centred = features - features.mean(axis=0)
    _, values, rows = np.linalg.svd(centred, full_matrices=False)
    carried = int(np.sum(values > values[0] * FLAT))
    return rows[: min(most, carried)].T


def fit_threshold(val_scores: np.ndarray, keep: float) -> float:
    """The smallest validation score at or under which at least `keep` of the validation images fall."""
    if not 0 < keep < 1:
        raise ValueError(f"keep must be in (0, 1), got {keep}")
    return float(np.quantile(np.asarray(val_scores, dtype=np.float64), keep, method="higher"))
