"""Statuses, the confidence threshold chosen on validation, and risk-coverage."""

from __future__ import annotations

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
    assert summary["shares"] == {"ok": 0.5, "uncertain": 0.25, "out_of_distribution": 0.25}
    assert summary["balanced_accuracy_all"] == pytest.approx(0.75)
    assert summary["balanced_accuracy_ok"] == 1.0
