"""When a prediction should not be trusted, and what that costs: statuses, thresholds, risk-coverage.

A prediction is `out_of_distribution` when the OOD score (scoring/ood.py) is above the threshold that
keeps `ood_keep` of the validation images, else `uncertain` when the image model's top calibrated
probability is below the confidence threshold, else `ok`. Models saved without a detector say
`unchecked`. The confidence threshold is the lowest that lets the kept validation images reach a
stated balanced accuracy (`target`), so "uncertain" means "below the level this model was asked to
reach", not an arbitrary cut; where the target cannot be reached while keeping `min_coverage` of the
images, the threshold keeps that share and the record says the target was not reached.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from skinpamper.errors import ConfigError

OK, UNCERTAIN, OUT_OF_DISTRIBUTION, UNCHECKED = "ok", "uncertain", "out_of_distribution", "unchecked"
STATUSES = (OK, UNCERTAIN, OUT_OF_DISTRIBUTION, UNCHECKED)
MIN_COVERAGE = 0.5  # never call more than half of the validation images uncertain


@dataclass(frozen=True)
class ConfidenceChoice:
    """A confidence threshold chosen on validation, and what it gave there."""

    threshold: float  # top calibrated probability below which a prediction is "uncertain"
    coverage: float  # share of validation images at or above it
    balanced_accuracy: float  # of those images
    reached: bool  # whether `balanced_accuracy` reached the target


@dataclass(frozen=True)
class Abstention:
    """The run's abstention rules (abstention.json), fitted on its validation split."""

    score: str  # the OOD score's name (scoring.ood.SCORE_NAME)
    ood_keep: float  # share of validation images the OOD threshold keeps
    ood_threshold: float
    target_balanced_accuracy: float
    confidence: dict[str, ConfidenceChoice]  # "plain" and "tta": TTA probabilities are less peaked

    def confidence_threshold(self, tta: bool) -> float:
        return self.confidence["tta" if tta else "plain"].threshold

    def statuses(self, ood_scores: np.ndarray, probabilities: np.ndarray, tta: bool) -> list[str]:
        """Status of each image from its OOD score and its image-only calibrated probabilities."""
        confident = np.asarray(probabilities).max(axis=1) >= self.confidence_threshold(tta)
        strange = np.asarray(ood_scores) > self.ood_threshold
        pairs = zip(strange.tolist(), confident.tolist(), strict=True)
        return [OUT_OF_DISTRIBUTION if s else OK if c else UNCERTAIN for s, c in pairs]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> Abstention:
        try:
            confidence = {k: ConfidenceChoice(**v) for k, v in data["confidence"].items()}
            record = cls(**{**data, "confidence": confidence})
            record.confidence_threshold(False), record.confidence_threshold(True)
            float(record.ood_threshold)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ConfigError(f"{source}: malformed abstention record ({exc!r})") from None
        return record


def kept_balanced_accuracy(y_true: np.ndarray, probs: np.ndarray, kept: np.ndarray) -> float | None:
    """Balanced accuracy of the kept images over the classes present among them; None if none kept."""
    if not np.any(kept):
        return None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")
        return float(balanced_accuracy_score(y_true[kept], probs[kept].argmax(axis=1)))


def choose_confidence(
    probs: np.ndarray, y_true: np.ndarray, target: float, min_coverage: float = MIN_COVERAGE
) -> ConfidenceChoice:
    """The lowest threshold on the top probability whose kept images reach `target` balanced accuracy.

    Thresholds are tried from the lowest confidence up (most images kept first), so the choice keeps
    as many images as the target allows, and never fewer than `min_coverage` of them.
    """
    probs, y_true = np.asarray(probs), np.asarray(y_true)
    confidence = probs.max(axis=1)
    candidates = np.unique(confidence)  # ascending
    floor = float(np.quantile(confidence, 1 - min_coverage))
    best = ConfidenceChoice(float(candidates[0]), 1.0, 0.0, False)  # replaced on the first pass
    for threshold in candidates[candidates <= floor]:  # never empty: the lowest is below any quantile
        kept = confidence >= threshold
        score = kept_balanced_accuracy(y_true, probs, kept) or 0.0
        best = ConfidenceChoice(float(threshold), float(kept.mean()), score, score >= target)
        if best.reached:
            break
    return best


def risk_coverage(y_true: np.ndarray, probs: np.ndarray, points: int = 200) -> dict[str, Any]:
    """Selective risk (error rate of the kept images) against coverage, most confident first, and its
    area (AURC, Geifman & El-Yaniv 2017): lower is better; a perfect ranking of errors gives the least.

    The curve is given at about `points` evenly spaced coverages (the area uses every image), so it
    can be stored and drawn for any number of images."""
    y_true, probs = np.asarray(y_true), np.asarray(probs)
    order = np.argsort(-probs.max(axis=1), kind="stable")
    errors = (probs.argmax(axis=1) != y_true)[order]
    kept = np.arange(1, len(errors) + 1)
    risk = np.cumsum(errors) / kept
    shown = np.unique(np.linspace(0, len(errors) - 1, min(points, len(errors))).round().astype(int))
    return {
        "coverage": (kept[shown] / len(errors)).tolist(),
        "risk": risk[shown].tolist(),
        "aurc": float(risk.mean()),
    }


def abstention_summary(
    abstention: Abstention, ood_scores: np.ndarray, probs: np.ndarray, y_true: np.ndarray, tta: bool = False
) -> dict[str, Any]:
    """What the rules do to a labelled set: the share of each status, balanced accuracy of all images
    and of those answered "ok", and the risk-coverage area of the image model's confidence."""
    statuses = np.asarray(abstention.statuses(ood_scores, probs, tta))
    y_true, probs = np.asarray(y_true), np.asarray(probs)
    everything = np.ones(len(y_true), dtype=bool)
    confident = probs.max(axis=1) >= abstention.confidence_threshold(tta)
    return {
        "n": len(y_true),
        "shares": {status: float(np.mean(statuses == status)) for status in STATUSES[:3]},
        "confident_share": float(np.mean(confident)),  # coverage at the confidence threshold
        "balanced_accuracy_all": kept_balanced_accuracy(y_true, probs, everything),
        "balanced_accuracy_ok": kept_balanced_accuracy(y_true, probs, statuses == OK),
        "balanced_accuracy_in_distribution": kept_balanced_accuracy(
            y_true, probs, statuses != OUT_OF_DISTRIBUTION
        ),
        "aurc": risk_coverage(y_true, probs)["aurc"],
    }
