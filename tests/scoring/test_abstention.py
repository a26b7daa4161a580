"""Statuses, the confidence threshold chosen on validation, and risk-coverage."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from skinpamper.errors import ConfigError
from skinpamper.scoring.abstention import (
    Abstention,
    ConfidenceChoice,
    abstention_summary,
    choose_confidence,
    risk_coverage,
)
from skinpamper.scoring.melanoma import RuleOut

RULES = Abstention(
    score="mahalanobis",
    ood_keep=0.95,
    ood_threshold=10.0,
    target_balanced_accuracy=0.7,
    confidence={"plain": ConfidenceChoice(0.5, 0.8, 0.7, True), "tta": ConfidenceChoice(0.4, 0.8, 0.7, True)},
)


def _probs(top: list[float], classes: list[int]) -> np.ndarray:
    probs = np.full((len(top), 7), 0.0)
    for row, (p, c) in enumerate(zip(top, classes, strict=True)):
        probs[row] = (1 - p) / 6
        probs[row, c] = p
    return probs


def test_each_status_path() -> None:
    probs = _probs([0.9, 0.45, 0.99, 0.45], [0, 1, 2, 3])
    scores = np.array([1.0, 1.0, 50.0, 1.0])
    assert RULES.statuses(scores, probs, tta=False) == ["ok", "uncertain", "out_of_distribution", "uncertain"]
    # TTA has its own, lower threshold: 0.45 is confident enough there
    assert RULES.statuses(scores, probs, tta=True) == ["ok", "ok", "out_of_distribution", "ok"]


def test_rules_round_trip_and_a_malformed_record_is_refused() -> None:
    assert Abstention.from_dict(RULES.to_dict(), "abstention.json") == RULES
    broken = {**RULES.to_dict(), "confidence": {"plain": {"threshold": 0.5}}}
    with pytest.raises(ConfigError, match="abstention.json: malformed"):
        Abstention.from_dict(broken, "abstention.json")


def test_confidence_threshold_keeps_as_many_images_as_the_target_allows() -> None:
    # Confident predictions are right, unsure ones are wrong: dropping the unsure raises accuracy.
    rng = np.random.default_rng(0)
    y = np.arange(700) % 7
    sure = rng.uniform(0.6, 0.99, 700) > 0.75
    top = np.where(sure, rng.uniform(0.7, 0.99, 700), rng.uniform(0.2, 0.5, 700))
    predicted = np.where(sure, y, (y + 1) % 7)
    choice = choose_confidence(_probs(top.tolist(), predicted.tolist()), y, target=0.95)
    assert choice.reached and choice.balanced_accuracy >= 0.95
    assert choice.coverage == pytest.approx(np.mean(top >= choice.threshold))
    assert choice.threshold <= top[sure].min()  # no correct answer was called uncertain


def test_an_unreachable_target_keeps_half_and_says_so() -> None:
    y = np.arange(70) % 7
    wrong = _probs(np.linspace(0.3, 0.9, 70).tolist(), ((y + 1) % 7).tolist())
    choice = choose_confidence(wrong, y, target=0.7)
    assert not choice.reached and choice.coverage >= 0.5 and choice.balanced_accuracy == 0.0


def test_risk_coverage_orders_by_confidence_and_its_area_rewards_a_good_ranking() -> None:
    y = np.zeros(4, dtype=int)
    good = _probs([0.9, 0.8, 0.6, 0.5], [0, 0, 1, 1])  # the errors are the least confident
    bad = _probs([0.5, 0.6, 0.8, 0.9], [0, 0, 1, 1])  # the errors are the most confident
    curve = risk_coverage(y, good)
    assert curve["coverage"] == [0.25, 0.5, 0.75, 1.0] and curve["risk"] == [0, 0, 1 / 3, 0.5]
    assert curve["aurc"] < risk_coverage(y, bad)["aurc"]


def test_summary_reports_shares_and_the_accuracy_of_what_is_kept() -> None:
    y = np.array([0, 1, 2, 3])
    probs = _probs([0.9, 0.45, 0.99, 0.9], [0, 2, 2, 3])
    summary = abstention_summary(RULES, np.array([1.0, 1.0, 50.0, 1.0]), probs, y)
    assert summary["shares"] == {"ok": 0.5, "unfamiliar": 0.0, "uncertain": 0.25, "out_of_distribution": 0.25}
    assert summary["by_status"]["ok"]["n"] == 2 and summary["by_status"]["ok"]["balanced_accuracy"] == 1.0
    assert summary["balanced_accuracy_all"] == pytest.approx(0.75)
    assert summary["balanced_accuracy_ok"] == 1.0


SEPARATING = dataclasses.replace(
    RULES,
    dermoscopy_threshold=0.0,
    far_ood_threshold=100.0,
    dermoscopy_keep=0.99,
    melanoma={"plain": RuleOut(0.2, 0.9, 0.6, 0.9), "tta": RuleOut(0.1, 0.9, 0.5, 0.9)},
)


def test_a_dermoscopy_detector_refuses_and_the_distance_then_means_unfamiliar() -> None:
    probs = _probs([0.9, 0.9, 0.45, 0.9, 0.9], [0, 1, 2, 3, 4])
    distance = np.array([1.0, 50.0, 50.0, 1.0, 500.0])  # near, far, far and unsure, near, beyond any
    not_dermoscopy = np.array([-5.0, -5.0, -5.0, 3.0, -5.0])
    assert SEPARATING.statuses(distance, probs, False, not_dermoscopy) == [
        "ok",
        "unfamiliar",
        "uncertain",
        "out_of_distribution",
        "out_of_distribution",
    ]
    # Without the detector's log-odds (an export made before it), the distance refuses, as it did.
    assert SEPARATING.statuses(distance, probs, False)[1] == "out_of_distribution"


def test_new_rules_round_trip_and_old_records_load_without_them() -> None:
    assert Abstention.from_dict(SEPARATING.to_dict(), "abstention.json") == SEPARATING
    old = {k: v for k, v in RULES.to_dict().items() if k not in ("dermoscopy_threshold", "melanoma")}
    assert Abstention.from_dict(old, "abstention.json").rule_out(True) is None


def test_confidence_keeps_a_stated_melanoma_sensitivity() -> None:
    # Melanomas (class 4) are called right when confident and wrong when not: a melanoma target
    # raises the threshold above what balanced accuracy alone asks for.
    rng = np.random.default_rng(1)
    y = np.arange(700) % 7
    top = rng.uniform(0.3, 0.99, 700)
    predicted = np.where((y != 4) | (top > 0.5), y, 5)
    probs = _probs(top.tolist(), predicted.tolist())
    plain = choose_confidence(probs, y, target=0.5)
    strict = choose_confidence(probs, y, target=0.5, mel_target=0.95)
    assert strict.reached and strict.mel_sensitivity >= 0.95 and strict.threshold > plain.threshold
