"""Bootstrap resamples as weights, and the report's figures computed for many resamples at once.

A resample that draws whole lesions with replacement is a vector of weights: how often each image's
lesion was drawn. Every figure of every resample is then a few matrix products, which replaces a
thousand scikit-learn calls per figure, most of their time input checking (one set of intervals on
1,500 images: 14.6 s that way, 0.37 s this way). `tests/scoring/test_bootstrap.py` holds each
figure equal to scikit-learn's on the images a resample repeats.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

CHUNK = 200  # resamples per block: bounds the copies each figure makes of the weights on large sets


def lesion_weights(lesion_ids: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, N) bootstrap weights: each image counts as often as its lesion was drawn.

    As many lesions are drawn as there are; images without an id cannot be grouped, so are refused.
    """
    codes, uniques = pd.factorize(pd.Series(lesion_ids, dtype=object))
    if (codes < 0).any():
        raise ValueError("lesion_ids has missing values; pass lesion_ids=None to resample by image")
    draws = rng.multinomial(len(uniques), np.full(len(uniques), 1 / len(uniques)), size=n_boot)
    return draws[:, codes].astype(np.float64)


def chunks(weights: np.ndarray) -> Iterator[np.ndarray]:
    """The rows of `weights` in blocks of CHUNK (one empty block when there are none)."""
    for start in range(0, max(len(weights), 1), CHUNK):
        yield weights[start : start + CHUNK]


def nanmean(values: np.ndarray) -> np.ndarray:
    """Row means over the defined (non-NaN) values; NaN for a row with none."""
    defined = ~np.isnan(values)
    counts = defined.sum(axis=1)
    return np.where(counts > 0, np.where(defined, values, 0).sum(axis=1) / np.maximum(counts, 1), np.nan)


def recalls(weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(B, C) weighted recall of each class; NaN where a resample holds none of it."""
    onehot = np.eye(n_classes, dtype=bool)[y_true]
    support = weights @ onehot
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, (weights @ (onehot & (y_pred == y_true)[:, None])) / support, np.nan)


def macro_auc(weights: np.ndarray, y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(B,) mean one-vs-rest AUC over the classes each resample can rank (NaN when none)."""
    aucs = [auc(weights, y_true == c, probs[:, c]) for c in range(probs.shape[1])]
    return nanmean(np.column_stack(aucs))


def auc(weights: np.ndarray, positive: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC with image weights, ties counted half: P(score of a positive > of a negative)."""
    order = np.argsort(scores, kind="stable")
    scores, positive, weights = scores[order], positive[order], weights[:, order]
    starts = np.flatnonzero(np.r_[True, scores[1:] != scores[:-1]])  # first index of each tied value
    negative = np.add.reduceat(weights * ~positive, starts, axis=1)  # (B, ties)
    below = np.cumsum(negative, axis=1) - negative  # negative weight strictly below each tied value
    tie = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(scores)]))
    pos_weights = weights * positive
    wins = (pos_weights * (below[:, tie] + 0.5 * negative[:, tie])).sum(axis=1)
    total = pos_weights.sum(axis=1) * negative.sum(axis=1)
    return np.where(total > 0, wins / np.where(total > 0, total, 1), np.nan)


def sensitivity_at_specificity(
    weights: np.ndarray, positive: np.ndarray, scores: np.ndarray, specificity: float
) -> np.ndarray:
    """(B,) the highest true-positive rate among cuts whose false-positive rate is at most
    1 - `specificity` (the ROC thresholds are the distinct scores); NaN without positives or negatives.
    """
    order = np.argsort(-scores, kind="stable")
    scores, positive, weights = scores[order], positive[order], weights[:, order]
    ends = np.r_[np.flatnonzero(scores[1:] != scores[:-1]), len(scores) - 1]  # last of each tied value
    caught = np.cumsum(weights * positive, axis=1)[:, ends]  # positive weight scoring >= each value
    alarms = np.cumsum(weights * ~positive, axis=1)[:, ends]
    positives, negatives = caught[:, -1], alarms[:, -1]
    # 1 - 0.9 is 0.0999...: the slack keeps a false-positive rate of exactly 1/10 allowed.
    allowed = alarms <= (1.0 - specificity + 1e-9) * negatives[:, None]
    best = np.where(allowed, caught, 0.0).max(axis=1)
    defined = (positives > 0) & (negatives > 0)
    return np.where(defined, best / np.where(defined, positives, 1), np.nan)
