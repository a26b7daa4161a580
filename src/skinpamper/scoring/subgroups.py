"""For whom the model works: balanced accuracy, macro AUC and melanoma sensitivity per subgroup.

Clinical AI reporting guidelines ask for performance by sex, age and body site, and HAM10000 records
all three for nearly every image. Each subgroup gets its number of images, balanced accuracy, macro
AUC and melanoma sensitivity at the threshold that gives 90% specificity on the whole set (one
operating point for everyone, as a deployed model would have), each with a 95% interval from a
bootstrap that resamples whole lesions within the group. A group whose interval lies wholly below the
overall figure is flagged; groups smaller than `min_size` images are reported as too few.

The bootstrap is vectorised (`scoring.bootstrap`): each resample is a vector of weights, so every
figure of every resample is a few matrix products instead of a scikit-learn call.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from skinpamper.classes import INDEX, NUM_CLASSES
from skinpamper.scoring import bootstrap

MELANOMA = INDEX["mel"]
AGE_BANDS: tuple[tuple[float, float, str], ...] = (
    (0, 30, "<30"),
    (30, 45, "30-44"),
    (45, 60, "45-59"),
    (60, 75, "60-74"),
    (75, np.inf, "75+"),
)
MIN_SIZE = 30  # images: below this a group's balanced accuracy swings by more than it can tell
FIGURES = ("balanced_accuracy", "macro_auc", "mel_sensitivity")
UNKNOWN = "unknown"
_NOT_FACTORS = {"image_id", "lesion_id", "dx", "age"}  # identifiers, the label, and age (banded instead)


def age_band(age: float) -> str:
    if age is None or not np.isfinite(age):
        return UNKNOWN
    return next(label for low, high, label in AGE_BANDS if low <= age < high)


def factors(meta: pd.DataFrame) -> dict[str, pd.Series]:
    """The columns to break results down by: age band, then every categorical column the data has."""
    found = {}
    if "age" in meta.columns and pd.to_numeric(meta["age"], errors="coerce").notna().any():
        found["age"] = pd.to_numeric(meta["age"], errors="coerce").map(age_band)
    for column in meta.columns:
        if column in _NOT_FACTORS:
            continue
        values = meta[column].astype("string").str.strip().fillna(UNKNOWN).replace("", UNKNOWN)
        if 1 < values.nunique() <= 50:  # one value breaks nothing down; hundreds are identifiers
            found[str(column)] = values.astype(str)
    return found


def mel_threshold(y_true: np.ndarray, probs: np.ndarray, specificity: float = 0.9) -> float | None:
    """The lowest melanoma-probability cut whose specificity on this set is at least `specificity`."""
    is_mel = y_true == MELANOMA
    if is_mel.all() or not is_mel.any():
        return None
    fpr, _, thresholds = roc_curve(is_mel, probs[:, MELANOMA], drop_intermediate=False)
    return float(thresholds[fpr <= 1 - specificity + 1e-9].min())


def weighted_figures(
    weights: np.ndarray, y_true: np.ndarray, probs: np.ndarray, threshold: float | None
) -> dict[str, np.ndarray]:
    """Each figure for each row of `weights` (B, N): a row of ones gives the plain point estimate."""
    figures: dict[str, list[np.ndarray]] = {name: [] for name in FIGURES}
    is_mel = y_true == MELANOMA
    caught = is_mel & (probs[:, MELANOMA] >= threshold) if threshold is not None else None
    for block in bootstrap.chunks(weights):
        recall = bootstrap.recalls(block, y_true, probs.argmax(axis=1), NUM_CLASSES)
        figures["balanced_accuracy"].append(bootstrap.nanmean(recall))
        figures["macro_auc"].append(bootstrap.macro_auc(block, y_true, probs))
        with np.errstate(invalid="ignore", divide="ignore"):
            sensitivity = (
                np.full(len(block), np.nan) if caught is None else (block @ caught) / (block @ is_mel)
            )
        figures["mel_sensitivity"].append(sensitivity)
    return {name: np.concatenate(values) for name, values in figures.items()}


def _summary(
    y_true: np.ndarray,
    probs: np.ndarray,
    lesions: np.ndarray,
    threshold: float | None,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    point = weighted_figures(np.ones((1, len(y_true))), y_true, probs, threshold)
    samples = weighted_figures(
        bootstrap.lesion_weights(lesions, n_boot, np.random.default_rng(seed)), y_true, probs, threshold
    )
    row: dict[str, Any] = {"n": len(y_true)}
    for name in FIGURES:
        value = float(point[name][0])
        defined = samples[name][~np.isnan(samples[name])]
        row[name] = None if np.isnan(value) else value
        row[f"{name}_ci95"] = (
            [float(v) for v in np.percentile(defined, [2.5, 97.5])] if len(defined) else None
        )
    return row


def subgroup_report(
    y_true: np.ndarray,
    probs: np.ndarray,
    meta: pd.DataFrame,
    lesion_ids: np.ndarray | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    min_size: int = MIN_SIZE,
) -> dict[str, Any]:
    """The overall figures and one row per (factor, group), ready for metrics.json and the report.

    Without lesion ids each image is its own lesion. Missing values form an "unknown" group.
    """
    y_true, probs = np.asarray(y_true, dtype=np.int64), np.asarray(probs, dtype=np.float64)
    meta = meta.reset_index(drop=True)
    lesions = (
        np.arange(len(y_true)).astype(str) if lesion_ids is None else np.asarray(lesion_ids, dtype=object)
    )
    threshold = mel_threshold(y_true, probs)
    overall = _summary(y_true, probs, lesions, threshold, n_boot, seed)
    groups = []
    for factor, values in factors(meta).items():
        for group in sorted(values.unique(), key=lambda v: (v == UNKNOWN, _band_order(factor, v), v)):
            mask = (values == group).to_numpy()
            row: dict[str, Any] = {"factor": factor, "group": group, "n": int(mask.sum())}
            if mask.sum() < min_size:
                groups.append({**row, "too_few": True})
                continue
            row.update(_summary(y_true[mask], probs[mask], lesions[mask], threshold, n_boot, seed))
            below = [
                name
                for name in FIGURES
                if row[f"{name}_ci95"] is not None
                and overall[name] is not None
                and row[f"{name}_ci95"][1] < overall[name]
            ]
            groups.append({**row, "too_few": False, "below_overall": below})
    return {
        "overall": overall,
        "mel_threshold_at_90_specificity": threshold,
        "min_size": min_size,
        "bootstrap": {"n_boot": n_boot, "unit": "image" if lesion_ids is None else "lesion", "seed": seed},
        "groups": groups,
    }


def _band_order(factor: str, value: str) -> int:
    labels = [label for _, _, label in AGE_BANDS]
    return labels.index(value) if factor == "age" and value in labels else 0
