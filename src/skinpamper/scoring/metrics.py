"""Classification metrics from scikit-learn, always over all seven classes in canonical order.

Balanced accuracy (mean per-class recall) is the headline: with nv at two thirds of HAM10000, plain
accuracy rewards a model that never finds a melanoma.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, recall_score, roc_auc_score

from skinpamper.classes import CODES, NUM_CLASSES

_LABELS = list(range(NUM_CLASSES))


def classification_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """n, accuracy, balanced_accuracy, macro_auc, per_class_recall {code: recall}, confusion_matrix.

    macro_auc is the mean one-vs-rest ROC AUC over the classes present in `y_true` (None when fewer
    than two are present); confusion_matrix rows are the truth.

    Classes absent from `y_true` get recall 0 in per_class_recall but are left out of balanced accuracy
    (sklearn's rule: the mean recall over the classes present); its warning about them is silenced.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(probs).argmax(axis=1)
    recall = recall_score(y_true, y_pred, labels=_LABELS, average=None, zero_division=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")
        balanced = balanced_accuracy_score(y_true, y_pred)
    return {
        "n": len(y_true),
        "accuracy": float(np.mean(y_true == y_pred)),
        "balanced_accuracy": float(balanced),
        "macro_auc": macro_auc(y_true, np.asarray(probs)),
        "per_class_recall": {code: float(r) for code, r in zip(CODES, recall, strict=True)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=_LABELS).astype(int).tolist(),
    }


def macro_auc(y_true: np.ndarray, probs: np.ndarray) -> float | None:
    """Mean one-vs-rest ROC AUC over the classes present (absent classes have no positives to rank)."""
    present = np.unique(y_true)
    if len(present) < 2:
        return None
    scores = [roc_auc_score(y_true == c, probs[:, c]) for c in present]
    return float(np.mean(scores))
