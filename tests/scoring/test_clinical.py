"""clinical_metrics and its parts against values worked out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skinpamper.classes import CODES, INDEX
from skinpamper.scoring.bootstrap import lesion_weights
from skinpamper.scoring.clinical import (
    brier_score,
    clinical_metrics,
    expected_calibration_error,
)

AKIEC, BCC, MEL, NV = INDEX["akiec"], INDEX["bcc"], INDEX["mel"], INDEX["nv"]


def _confident(y_pred: np.ndarray, top: float = 0.94) -> np.ndarray:
    """Probability rows whose argmax is y_pred, `top` on it and the rest spread evenly."""
    probs = np.full((len(y_pred), 7), (1 - top) / 6)
    probs[np.arange(len(y_pred)), y_pred] = top
    return probs


def test_per_class_rates_on_a_three_class_toy() -> None:
    y_true = np.array([AKIEC] * 4 + [BCC] * 3 + [MEL] * 3)
    y_pred = np.array([AKIEC, AKIEC, AKIEC, MEL, BCC, BCC, MEL, MEL, MEL, AKIEC])
    m = clinical_metrics(y_true, _confident(y_pred), n_boot=0)
    # akiec: TP 3, FN 1, FP 1 (a mel), TN 5 | bcc: TP 2, FN 1, FP 0, TN 7 | mel: TP 2, FN 1, FP 2, TN 5
    expected = {
        "akiec": (3 / 4, 5 / 6, 3 / 4, 3 / 4),
        "bcc": (2 / 3, 1.0, 1.0, 2 * (2 / 3) / (1 + 2 / 3)),
        "mel": (2 / 3, 5 / 7, 2 / 4, 2 * (1 / 2) * (2 / 3) / (1 / 2 + 2 / 3)),
    }
    for code, (sensitivity, specificity, precision, f1) in expected.items():
        row = m["per_class"][code]
        assert row["sensitivity"] == pytest.approx(sensitivity)
        assert row["specificity"] == pytest.approx(specificity)
        assert row["precision"] == pytest.approx(precision)
        assert row["f1"] == pytest.approx(f1)
    assert m["per_class"]["mel"]["support"] == 3
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 2 / 3 + 2 / 3) / 3)
    matrix = np.array(m["confusion_matrix"])  # rows are the truth
    assert matrix[AKIEC, MEL] == matrix[BCC, MEL] == matrix[MEL, AKIEC] == 1 and matrix.sum() == 10


def test_absent_classes_are_none_not_errors() -> None:
    y_true = np.array([AKIEC, AKIEC, BCC, BCC])
    m = clinical_metrics(y_true, _confident(np.array([AKIEC, BCC, BCC, BCC])), n_boot=0)
    df = m["per_class"]["df"]
    assert df == {
        "support": 0, "sensitivity": None, "specificity": 1.0, "precision": None, "f1": None,
        "auc": None, "average_precision": None,
    }  # fmt: skip
    assert m["mel_sensitivity_at_specificity"] == {"0.8": None, "0.9": None, "0.95": None}
    assert m["ci95"] == {"accuracy": None, "balanced_accuracy": None, "macro_auc": None,
                         "mel_sensitivity_at_90": None}  # fmt: skip


def test_auc_and_average_precision_one_vs_rest() -> None:
    y_true = np.array([AKIEC, AKIEC, BCC, BCC])
    probs = np.zeros((4, 7))
    probs[:, AKIEC] = [0.9, 0.4, 0.6, 0.1]  # pairs won 0.9>0.6, 0.9>0.1, 0.4>0.1, lost 0.4<0.6 -> AUC 3/4
    probs[:, BCC] = [0.1, 0.2, 0.8, 0.3]  # perfect ranking
    m = clinical_metrics(y_true, probs, n_boot=0)
    akiec, bcc = m["per_class"]["akiec"], m["per_class"]["bcc"]
    assert akiec["auc"] == pytest.approx(0.75) and bcc["auc"] == pytest.approx(1.0)
    # akiec ranked pos (0.9), neg (0.6), pos (0.4): AP = 1/2 * 1 + 1/2 * 2/3
    assert akiec["average_precision"] == pytest.approx(0.5 + 1 / 3)
    assert bcc["average_precision"] == pytest.approx(1.0)
    assert m["macro_auc"] == pytest.approx(0.875)


def test_melanoma_sensitivity_at_fixed_specificity() -> None:
    # 10 nevi scored 0.0..0.9 as mel, 4 melanomas scored 0.95, 0.85, 0.75, 0.05.
    mel_score = np.array([i / 10 for i in range(10)] + [0.95, 0.85, 0.75, 0.05])
    y_true = np.array([NV] * 10 + [MEL] * 4)
    probs = np.zeros((14, 7))
    probs[:, MEL], probs[:, NV] = mel_score, 1 - mel_score
    m = clinical_metrics(y_true, probs, n_boot=0)
    # spec 0.95: no nevus above the threshold -> 0.95 only; spec 0.9: one nevus (0.9) -> 0.95, 0.85;
    # spec 0.8: two nevi (0.8, 0.9) -> 0.95, 0.85, 0.75. FPR of exactly 1/10 and 2/10 must be allowed.
    assert m["mel_sensitivity_at_specificity"] == {"0.8": 0.75, "0.9": 0.5, "0.95": 0.25}


def test_expected_calibration_error_on_known_bins() -> None:
    # Four images at confidence 0.95 (bin 14), two right: gap 0.45. Two at 0.5 (bin 7), both right: gap 0.5.
    y_pred = np.array([AKIEC, AKIEC, AKIEC, AKIEC, BCC, BCC])
    probs = np.vstack([_confident(y_pred[:4], 0.95), _confident(y_pred[4:], 0.5)])
    y_true = np.array([AKIEC, AKIEC, NV, NV, BCC, BCC])
    assert expected_calibration_error(y_true, probs) == pytest.approx((4 * 0.45 + 2 * 0.5) / 6)
    assert expected_calibration_error(np.array([MEL]), np.eye(7)[[MEL]]) == 0.0


def test_brier_score_on_two_images() -> None:
    probs = np.zeros((2, 7))
    probs[0, :3] = [0.7, 0.2, 0.1]  # truth 0: 0.3^2 + 0.2^2 + 0.1^2 = 0.14
    probs[1, :2] = [0.5, 0.5]  # truth 1: 0.5^2 + 0.5^2 = 0.5
    assert brier_score(np.array([0, 1]), probs) == pytest.approx((0.14 + 0.5) / 2)


def _two_lesions() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lesion A: 50 melanoma images all right; lesion B: 50 nevus images all called melanoma."""
    y_true = np.array([MEL] * 50 + [NV] * 50)
    lesions = np.array(["A"] * 50 + ["B"] * 50)
    return y_true, _confident(np.full(100, MEL)), lesions


def test_bootstrap_draws_whole_lesions() -> None:
    _, _, lesions = _two_lesions()
    weights = lesion_weights(lesions, 20, np.random.default_rng(0))
    assert weights.shape == (20, 100) and (weights.sum(axis=1) == 100).all()
    for counts in weights:  # each lesion 0, 1 or 2 times, all its images alike
        assert len(set(counts[:50])) == 1 and len(set(counts[50:])) == 1


def test_bootstrap_interval_reflects_lesions_and_is_deterministic() -> None:
    y_true, probs, lesions = _two_lesions()
    by_lesion = clinical_metrics(y_true, probs, lesion_ids=lesions, n_boot=200, seed=3)
    # Resamples hold A twice (accuracy 1), B twice (0) or both (0.5), a quarter of the time each end.
    assert by_lesion["ci95"]["accuracy"] == [0.0, 1.0]
    assert by_lesion["bootstrap"] == {"n_boot": 200, "unit": "lesion", "seed": 3}
    by_image = clinical_metrics(y_true, probs, n_boot=200, seed=3)
    low, high = by_image["ci95"]["accuracy"]
    assert 0.3 < low < 0.5 < high < 0.7  # 100 "independent" images pretend to far more certainty
    assert clinical_metrics(y_true, probs, lesion_ids=lesions, n_boot=200, seed=3) == by_lesion


def test_missing_lesion_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="missing"):
        clinical_metrics(np.array([MEL, NV, NV]), _confident(np.full(3, MEL)), ["A", None, "B"], n_boot=5)


def test_result_is_strict_json() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 7, 60)
    probs = rng.dirichlet(np.ones(7), 60)
    m = clinical_metrics(y_true, probs, lesion_ids=[f"L{i // 2}" for i in range(60)], n_boot=20)
    assert json.loads(json.dumps(m, allow_nan=False)) == m
    assert set(m["per_class"]) == set(CODES)
    assert all(len(m["ci95"][k]) == 2 for k in ("accuracy", "balanced_accuracy", "macro_auc"))
