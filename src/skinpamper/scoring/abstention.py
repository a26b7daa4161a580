"""When a prediction should not be trusted, and what that costs: statuses, thresholds, risk-coverage.

Runs with a dermoscopy detector (`scoring.dermoscopy`) tell two kinds of unfamiliar apart. A prediction
is `out_of_distribution` (refused) when the detector's log-odds of "not dermoscopy" are above its
threshold, or the Mahalanobis distance is beyond that of any shifted validation dermoscopy
(`far_ood_threshold`); else `uncertain` when the image model's top calibrated probability is below the
confidence threshold; else `unfamiliar` (answered, with a warning) when the Mahalanobis distance
(`scoring.ood`) is above the threshold that keeps `ood_keep` of the validation images: dermoscopy, but
unlike the training images, as another device's or clinic's are; else `ok`. Runs saved before the
dermoscopy detector refuse on the distance itself, as they always did, and models saved without any
detector say `unchecked`.

The confidence threshold is the lowest that lets the kept validation images reach a stated balanced
accuracy (`target`) and, where asked, a stated melanoma sensitivity (`mel_target`), so "uncertain"
means "below the level this model was asked to reach", not an arbitrary cut; where the targets cannot
be reached while keeping `min_coverage` of the images, the threshold keeps that share and the record
says they were not reached.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from skinpamper.errors import ConfigError
from skinpamper.scoring.melanoma import MEL, RuleOut, mel_sensitivity, rule_out_effect

OK, UNCERTAIN, OUT_OF_DISTRIBUTION, UNCHECKED = "ok", "uncertain", "out_of_distribution", "unchecked"
UNFAMILIAR = "unfamiliar"
STATUSES = (OK, UNFAMILIAR, UNCERTAIN, OUT_OF_DISTRIBUTION, UNCHECKED)
SCORED_STATUSES = STATUSES[:4]  # what a model with a detector can say
# The sentence shown beside a prediction wherever it is shown (CLI, JSON, tables, the page).
WARNINGS = {
    OK: None,
    UNFAMILIAR: (
        "Dermoscopy unlike the training images (another device or clinic?): answered, but the "
        "accuracy measured on the training data may not hold here."
    ),
    UNCERTAIN: "The model is not sure about this image: see a dermatologist.",
    OUT_OF_DISTRIBUTION: "This does not look like a dermoscopy image, so the model gives no answer.",
    UNCHECKED: "This model was saved without an out-of-distribution detector: it cannot tell whether the "
    "image suits it.",
}
MIN_COVERAGE = 0.5  # never call more than half of the validation images uncertain


@dataclass(frozen=True)
class ConfidenceChoice:
    """A confidence threshold chosen on validation, and what it gave there."""

    threshold: float  # top calibrated probability below which a prediction is "uncertain"
    coverage: float  # share of validation images at or above it
    balanced_accuracy: float  # of those images
    reached: bool  # whether `balanced_accuracy` (and `mel_sensitivity`, when asked) reached the target
    mel_sensitivity: float | None = None  # melanoma recall of those images; None: none kept or not recorded


@dataclass(frozen=True)
class Abstention:
    """The run's abstention rules (abstention.json), fitted on its validation split."""

    score: str  # the OOD score's name (scoring.ood.SCORE_NAME)
    ood_keep: float  # share of validation images the OOD threshold keeps
    ood_threshold: float
    target_balanced_accuracy: float
    confidence: dict[str, ConfidenceChoice]  # "plain" and "tta": TTA probabilities are less peaked
    # Absent from runs saved before the dermoscopy detector: they refuse on the distance alone.
    dermoscopy_threshold: float | None = None  # log-odds of "not dermoscopy" above which it refuses
    # Mahalanobis distance beyond any shifted validation dermoscopy: refused too (the linear detector
    # never saw photos or other medical images; the distance ranks them 0.98-0.99 AUROC).
    far_ood_threshold: float | None = None
    dermoscopy_keep: float | None = None  # share of validation dermoscopy, plain and shifted, it accepts
    target_mel_sensitivity: float | None = None  # melanoma recall asked of the validation images kept
    melanoma: dict[str, RuleOut] | None = None  # "plain" and "tta": the melanoma rule-out cut

    def confidence_threshold(self, tta: bool) -> float:
        return self.confidence["tta" if tta else "plain"].threshold

    def rule_out(self, tta: bool) -> RuleOut | None:
        return None if self.melanoma is None else self.melanoma["tta" if tta else "plain"]

    def separates_unfamiliar(self, not_dermoscopy: np.ndarray | None) -> bool:
        """Whether refusing is the dermoscopy detector's job, the distance then meaning `unfamiliar`."""
        return self.dermoscopy_threshold is not None and not_dermoscopy is not None

    def statuses(
        self,
        ood_scores: np.ndarray,
        probabilities: np.ndarray,
        tta: bool,
        not_dermoscopy: np.ndarray | None = None,
    ) -> list[str]:
        """Status of each image from its OOD score, its image-only calibrated probabilities and,
        where the run has the detector, its log-odds of not being dermoscopy."""
        confident = np.asarray(probabilities).max(axis=1) >= self.confidence_threshold(tta)
        far = np.asarray(ood_scores) > self.ood_threshold
        if self.separates_unfamiliar(not_dermoscopy):
            beyond = np.asarray(ood_scores) > (
                np.inf if self.far_ood_threshold is None else self.far_ood_threshold
            )
            refused = (np.asarray(not_dermoscopy) > self.dermoscopy_threshold) | beyond
            unfamiliar = far
        else:
            refused, unfamiliar = far, np.zeros_like(far)
        rows = zip(refused.tolist(), confident.tolist(), unfamiliar.tolist(), strict=True)
        return [
            OUT_OF_DISTRIBUTION if r else UNCERTAIN if not c else UNFAMILIAR if u else OK for r, c, u in rows
        ]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> Abstention:
        try:
            confidence = {k: ConfidenceChoice(**v) for k, v in data["confidence"].items()}
            melanoma = data.get("melanoma")
            if melanoma is not None:
                melanoma = {k: RuleOut(**v) for k, v in melanoma.items()}
            record = cls(**{**data, "confidence": confidence, "melanoma": melanoma})
            record.confidence_threshold(False), record.confidence_threshold(True)
            record.rule_out(False), record.rule_out(True)
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
    probs: np.ndarray,
    y_true: np.ndarray,
    target: float,
    min_coverage: float = MIN_COVERAGE,
    mel_target: float | None = None,
) -> ConfidenceChoice:
    """The lowest threshold on the top probability whose kept images reach `target` balanced accuracy
    and, when `mel_target` is given, that melanoma sensitivity.

    Thresholds are tried from the lowest confidence up (most images kept first), so the choice keeps
    as many images as the targets allow, and never fewer than `min_coverage` of them.
    """
    probs, y_true = np.asarray(probs), np.asarray(y_true)
    if not np.any(y_true == MEL):
        mel_target = None  # no melanoma to keep: the target cannot constrain anything
    confidence = probs.max(axis=1)
    candidates = np.unique(confidence)  # ascending
    floor = float(np.quantile(confidence, 1 - min_coverage))
    best = ConfidenceChoice(float(candidates[0]), 1.0, 0.0, False)  # replaced on the first pass
    for threshold in candidates[candidates <= floor]:  # never empty: the lowest is below any quantile
        kept = confidence >= threshold
        score = kept_balanced_accuracy(y_true, probs, kept) or 0.0
        mel = mel_sensitivity(y_true, probs, kept)
        reached = score >= target and (mel_target is None or (mel is not None and mel >= mel_target))
        best = ConfidenceChoice(float(threshold), float(kept.mean()), score, reached, mel)
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


def by_status(statuses: np.ndarray, probs: np.ndarray, y_true: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per status: images, share, balanced accuracy and melanoma sensitivity of the images given it."""
    table = {}
    for status in SCORED_STATUSES:
        given = statuses == status
        table[status] = {
            "n": int(given.sum()),
            "share": float(given.mean()) if len(given) else 0.0,
            "balanced_accuracy": kept_balanced_accuracy(y_true, probs, given),
            "melanomas": int(np.sum(given & (y_true == MEL))),
            "mel_sensitivity": mel_sensitivity(y_true, probs, given),
        }
    return table


def abstention_summary(
    abstention: Abstention,
    ood_scores: np.ndarray,
    probs: np.ndarray,
    y_true: np.ndarray,
    tta: bool = False,
    not_dermoscopy: np.ndarray | None = None,
) -> dict[str, Any]:
    """What the rules do to a labelled set: the share of each status and, per status, balanced
    accuracy and melanoma sensitivity; balanced accuracy of all images and of those answered "ok";
    what the melanoma rule-out cut does; the risk-coverage area of the image model's confidence."""
    statuses = np.asarray(abstention.statuses(ood_scores, probs, tta, not_dermoscopy))
    y_true, probs = np.asarray(y_true), np.asarray(probs)
    everything = np.ones(len(y_true), dtype=bool)
    confident = probs.max(axis=1) >= abstention.confidence_threshold(tta)
    rule = abstention.rule_out(tta)
    return {
        "n": len(y_true),
        "shares": {status: float(np.mean(statuses == status)) for status in SCORED_STATUSES},
        "by_status": by_status(statuses, probs, y_true),
        "confident_share": float(np.mean(confident)),  # coverage at the confidence threshold
        "balanced_accuracy_all": kept_balanced_accuracy(y_true, probs, everything),
        "balanced_accuracy_ok": kept_balanced_accuracy(y_true, probs, statuses == OK),
        "balanced_accuracy_in_distribution": kept_balanced_accuracy(
            y_true, probs, statuses != OUT_OF_DISTRIBUTION
        ),
        "melanoma_rule_out": None if rule is None else rule_out_effect(rule, probs, y_true),
        "aurc": risk_coverage(y_true, probs)["aurc"],
    }
