"""Clinical evaluation: per-class rates, melanoma operating points, calibration and bootstrap intervals.

A dermatologist asks "how many melanomas does it miss at a false-alarm rate I can live with", not
"what is the accuracy", so the melanoma-vs-rest ROC is read at fixed specificities. Test sets of a few
hundred lesions give wide error bars, so the headline figures come with 95% bootstrap intervals,
resampled by lesion: images of one lesion are near-duplicates and must not count as independent.

Values are over all seven classes in canonical order; anything undefined (a class absent from y_true,
a specificity with no negatives) is None. Everything returned is plain JSON (int, float, list, None).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from skinpamper.classes import CODES, INDEX, NUM_CLASSES
from skinpamper.scoring import bootstrap
from skinpamper.scoring.metrics import macro_auc

MELANOMA = INDEX["mel"]
SPECIFICITIES: tuple[float, ...] = (0.8, 0.9, 0.95)
ECE_BINS = 15
# The four headline figures that get bootstrap intervals; the last is melanoma sensitivity at 90% spec.
BOOTSTRAPPED: tuple[str, ...] = ("accuracy", "balanced_accuracy", "macro_auc", "mel_sensitivity_at_90")
_LABELS = list(range(NUM_CLASSES))


def clinical_metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    lesion_ids: np.ndarray | list[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every figure of the evaluation report for canonical labels `y_true` and (N, 7) probabilities.

    `lesion_ids` (one per image, none missing) makes the bootstrap draw whole lesions; without them it
    draws images. `n_boot=0` skips the bootstrap (intervals None).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    y_pred = probs.argmax(axis=1)
    headline = headline_metrics(y_true, probs)
    return {
        "n": len(y_true),
        "accuracy": headline["accuracy"],
        "balanced_accuracy": headline["balanced_accuracy"],
        "macro_auc": headline["macro_auc"],
        "per_class": per_class_metrics(y_true, probs),
        "mel_sensitivity_at_specificity": {
            str(spec): sensitivity_at_specificity(y_true == MELANOMA, probs[:, MELANOMA], spec)
            for spec in SPECIFICITIES
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=_LABELS).astype(int).tolist(),
        "ece": expected_calibration_error(y_true, probs),
        "brier": brier_score(y_true, probs),
        "ci95": bootstrap_ci(y_true, probs, lesion_ids, n_boot, seed),
        "bootstrap": {"n_boot": n_boot, "unit": "image" if lesion_ids is None else "lesion", "seed": seed},
    }


def headline_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict[str, float | None]:
    """The figures in BOOTSTRAPPED, computed once for the point estimate and once per resample."""
    y_pred = probs.argmax(axis=1)
    with warnings.catch_warnings():  # a resample may hold one class, or miss ones the model predicts
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")
        warnings.filterwarnings("ignore", "A single label was found")
        balanced = float(balanced_accuracy_score(y_true, y_pred))
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "balanced_accuracy": balanced,
        "macro_auc": macro_auc(y_true, probs),
        "mel_sensitivity_at_90": sensitivity_at_specificity(y_true == MELANOMA, probs[:, MELANOMA], 0.9),
    }


def per_class_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict[str, dict[str, Any]]:
    """{code: support, sensitivity, specificity, precision, f1, auc, average_precision}, one-vs-rest."""
    y_pred = probs.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=_LABELS, zero_division=np.nan
    )
    matrix = confusion_matrix(y_true, y_pred, labels=_LABELS)
    negatives = len(y_true) - matrix.sum(axis=1)
    false_alarms = matrix.sum(axis=0) - np.diag(matrix)
    result = {}
    for c, code in enumerate(CODES):
        is_c, ranked = y_true == c, 0 < support[c] < len(y_true)  # AUC needs positives and negatives
        result[code] = {
            "support": int(support[c]),
            "sensitivity": _float(recall[c]),
            "specificity": _ratio(negatives[c] - false_alarms[c], negatives[c]),
            "precision": _float(precision[c]),
            "f1": _float(f1[c]),
            "auc": float(roc_auc_score(is_c, probs[:, c])) if ranked else None,
            "average_precision": float(average_precision_score(is_c, probs[:, c])) if support[c] else None,
        }
    return result


def sensitivity_at_specificity(
    is_positive: np.ndarray, scores: np.ndarray, specificity: float
) -> float | None:
    """Highest true-positive rate among ROC thresholds whose false-positive rate is <= 1 - specificity.

    None when there are no positives or no negatives (no ROC curve).
    """
    is_positive = np.asarray(is_positive, dtype=bool)
    if is_positive.all() or not is_positive.any():
        return None
    fpr, tpr, _ = roc_curve(is_positive, scores, drop_intermediate=False)
    allowed = fpr <= 1.0 - specificity + 1e-9  # 1 - 0.9 is 0.0999..., which would refuse an FPR of 1/10
    return float(tpr[allowed].max())


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Bin-size-weighted mean |accuracy - confidence| over equal-width bins (lo, hi] of top confidence."""
    probs = np.asarray(probs, dtype=np.float64)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == np.asarray(y_true)).astype(np.float64)
    bins = np.digitize(confidence, np.linspace(0.0, 1.0, n_bins + 1)[1:-1], right=True)
    # Per bin, count * |accuracy - confidence| is |sum(correct) - sum(confidence)|.
    gap = np.bincount(bins, correct, n_bins) - np.bincount(bins, confidence, n_bins)
    return float(np.abs(gap).sum() / len(confidence))


def brier_score(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Multi-class Brier score: mean over images of the sum over classes of (p - one-hot)^2."""
    probs = np.asarray(probs, dtype=np.float64)
    onehot = np.eye(probs.shape[1])[np.asarray(y_true)]
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def bootstrap_ci(
    y_true: np.ndarray,
    probs: np.ndarray,
    lesion_ids: np.ndarray | list[str] | None,
    n_boot: int,
    seed: int,
) -> dict[str, list[float] | None]:
    """Percentile 95% intervals of the BOOTSTRAPPED figures; None where no resample defines the figure.

    Whole lesions are drawn with replacement (images, without ids), as weights (`scoring.bootstrap`).
    """
    if n_boot == 0:
        return dict.fromkeys(BOOTSTRAPPED)
    units = np.arange(len(y_true)) if lesion_ids is None else np.asarray(lesion_ids, dtype=object)
    if len(units) != len(y_true):
        raise ValueError(f"{len(units)} lesion ids for {len(y_true)} images")
    weights = bootstrap.lesion_weights(units, n_boot, np.random.default_rng(seed))
    samples = np.concatenate(
        [resampled_headline(block, y_true, probs) for block in bootstrap.chunks(weights)]
    )
    return {k: _interval(samples[:, i]) for i, k in enumerate(BOOTSTRAPPED)}


def resampled_headline(weights: np.ndarray, y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(B, len(BOOTSTRAPPED)): `headline_metrics` of each resample in `weights` (B, N), NaN where
    undefined; equal to scikit-learn's on the images each resample repeats."""
    y_pred = probs.argmax(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = (weights @ (y_pred == y_true)) / weights.sum(axis=1)
    balanced = bootstrap.nanmean(bootstrap.recalls(weights, y_true, y_pred, NUM_CLASSES))
    auc = bootstrap.macro_auc(weights, y_true, probs)
    mel = bootstrap.sensitivity_at_specificity(weights, y_true == MELANOMA, probs[:, MELANOMA], 0.9)
    return np.column_stack([accuracy, balanced, auc, mel])


def _interval(values: np.ndarray) -> list[float] | None:
    defined = values[~np.isnan(values)]
    if len(defined) == 0:
        return None
    return [float(v) for v in np.percentile(defined, [2.5, 97.5])]


def _float(value: float) -> float | None:
    """NaN (sklearn's 'undefined') as None, so the result stays valid JSON."""
    return None if np.isnan(value) else float(value)


def _ratio(numerator: int, denominator: int) -> float | None:
    return float(numerator / denominator) if denominator else None
