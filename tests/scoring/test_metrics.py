"""classification_metrics against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from skinpamper.scoring.metrics import classification_metrics


def test_hand_computed_values() -> None:
    y_true = np.array([0, 0, 0, 0, 1, 1, 5, 5])
    y_pred = np.array([0, 0, 0, 1, 1, 6, 5, 5])
    metrics = classification_metrics(y_true, np.eye(7)[y_pred] * 0.9 + 0.01)
    assert metrics["n"] == 8
    assert metrics["accuracy"] == pytest.approx(6 / 8)
    # recall: akiec 3/4, bcc 1/2, nv 2/2; balanced accuracy averages the three classes present
    assert metrics["balanced_accuracy"] == pytest.approx((0.75 + 0.5 + 1.0) / 3)
    assert metrics["per_class_recall"] == {
        "akiec": 0.75, "bcc": 0.5, "bkl": 0.0, "df": 0.0, "mel": 0.0, "nv": 1.0, "vasc": 0.0
    }  # fmt: skip
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (7, 7) and matrix.sum() == 8
    assert matrix[0, 0] == 3 and matrix[0, 1] == 1 and matrix[1, 6] == 1 and matrix[5, 5] == 2


def test_values_are_plain_json_types() -> None:
    metrics = classification_metrics(np.array([2, 3]), np.eye(7)[[2, 2]])
    assert type(metrics["n"]) is int and type(metrics["accuracy"]) is float
    assert all(type(v) is int for row in metrics["confusion_matrix"] for v in row)
    assert metrics["balanced_accuracy"] == pytest.approx(0.5)


def test_macro_auc_is_mean_one_vs_rest_over_present_classes() -> None:
    from skinpamper.scoring.metrics import macro_auc

    y = np.array([0, 0, 1, 1])
    probs = np.zeros((4, 7))
    probs[:, 0] = [0.9, 0.4, 0.6, 0.1]  # class 0 vs rest: pairs (0.9>0.6, 0.9>0.1, 0.4<0.6, 0.4>0.1) -> 0.75
    probs[:, 1] = [0.1, 0.2, 0.8, 0.3]  # class 1 vs rest: perfect -> 1.0
    assert macro_auc(y, probs) == pytest.approx(0.875)
    assert macro_auc(np.zeros(3, int), probs[:3]) is None
