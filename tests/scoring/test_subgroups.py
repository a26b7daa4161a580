"""Subgroup figures: the vectorised bootstrap agrees with scikit-learn, groups are formed from the
metadata (missing values included), small groups are 'too few', and a worse group is flagged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score

from skinpamper.scoring.clinical import sensitivity_at_specificity
from skinpamper.scoring.metrics import macro_auc
from skinpamper.scoring.subgroups import (
    MELANOMA,
    age_band,
    factors,
    mel_threshold,
    subgroup_report,
    weighted_figures,
)


def _scored(n: int = 400, seed: int = 0, noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 7, n)
    logits = rng.normal(0, noise, (n, 7))
    logits[np.arange(n), y] += 1.5
    logits = np.round(logits, 1)  # ties, which the AUC must count half
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs


def test_point_estimates_match_scikit_learn() -> None:
    y, probs = _scored()
    threshold = mel_threshold(y, probs)
    figures = weighted_figures(np.ones((1, len(y))), y, probs, threshold)
    assert figures["balanced_accuracy"][0] == pytest.approx(balanced_accuracy_score(y, probs.argmax(1)))
    assert figures["macro_auc"][0] == pytest.approx(macro_auc(y, probs))
    expected = sensitivity_at_specificity(y == MELANOMA, probs[:, MELANOMA], 0.9)
    assert figures["mel_sensitivity"][0] == pytest.approx(expected)


def test_bootstrap_weights_equal_repeating_the_drawn_images() -> None:
    y, probs = _scored(200, seed=1)
    counts = np.random.default_rng(2).integers(0, 3, len(y)).astype(float)
    repeated = np.repeat(np.arange(len(y)), counts.astype(int))
    threshold = mel_threshold(y, probs)
    weighted = weighted_figures(counts[None], y, probs, threshold)
    plain = weighted_figures(np.ones((1, len(repeated))), y[repeated], probs[repeated], threshold)
    for name in weighted:
        assert weighted[name][0] == pytest.approx(plain[name][0])


def test_age_bands_and_factors_come_from_the_metadata() -> None:
    assert [age_band(a) for a in (5, 30, 44.9, 59, 74, 80, np.nan)] == [
        "<30", "30-44", "30-44", "45-59", "60-74", "75+", "unknown",
    ]  # fmt: skip
    meta = pd.DataFrame(
        {
            "image_id": ["a", "b", "c"],
            "lesion_id": ["l1", "l2", "l3"],
            "age": [20.0, np.nan, 70.0],
            "sex": ["male", None, "female"],
            "localization": ["back", "back", "back"],  # one value: nothing to break down
            "dx_type": ["histo", "follow_up", "histo"],
        }
    )
    found = factors(meta)
    assert list(found) == ["age", "sex", "dx_type"]
    assert found["age"].tolist() == ["<30", "unknown", "60-74"]
    assert found["sex"].tolist() == ["male", "unknown", "female"]


def test_report_flags_a_worse_group_and_calls_small_ones_too_few() -> None:
    y, probs = _scored(900, seed=3, noise=0.6)
    sex = np.array(["female"] * 400 + ["male"] * 480 + ["unknown"] * 20)
    # the model is right for women and guesses for men
    probs[400:880] = np.random.default_rng(4).dirichlet(np.ones(7), 480)
    meta = pd.DataFrame({"sex": sex, "age": np.nan})
    lesions = np.array([f"L{i // 2}" for i in range(len(y))])  # pairs of images per lesion
    report = subgroup_report(y, probs, meta, lesions, n_boot=300, seed=0)
    rows = {row["group"]: row for row in report["groups"]}
    assert list(rows) == ["female", "male", "unknown"]  # unknown last; no age factor (all missing)
    assert rows["unknown"]["too_few"] and "balanced_accuracy" not in rows["unknown"]
    assert "balanced_accuracy" in rows["male"]["below_overall"]
    assert rows["female"]["below_overall"] == []
    low, high = rows["male"]["balanced_accuracy_ci95"]
    assert low <= rows["male"]["balanced_accuracy"] <= high
    assert report["bootstrap"]["unit"] == "lesion" and report["overall"]["n"] == 900


def test_a_group_without_melanomas_has_no_melanoma_sensitivity() -> None:
    y, probs = _scored(200, seed=5)
    y[y == MELANOMA] = 0
    report = subgroup_report(y, probs, pd.DataFrame({"sex": ["a", "b"] * 100}), n_boot=50)
    assert report["mel_threshold_at_90_specificity"] is None
    assert all(row["mel_sensitivity"] is None for row in report["groups"])
