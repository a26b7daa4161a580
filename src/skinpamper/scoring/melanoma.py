"""Melanoma, the diagnosis that matters most: a rule-out operating point and sensitivity where it counts.

Balanced accuracy weighs the seven classes alike, so an `ok` fitted to it alone let a second clinic's
melanomas through (1 of 13 found among its `ok` answers). Two things here keep melanoma in view:

- `fit_rule_out`: a cut on the calibrated melanoma probability chosen on the validation split so that
  at least `sensitivity` (0.90) of its melanomas lie at or above it. Shown beside every prediction as
  "melanoma not ruled out" when p(mel) reaches it, with the specificity it had, whatever the top class.
- `mel_sensitivity`: melanoma recall (top class) among some images, e.g. those answered `ok`; the
  confidence threshold is fitted so that `ok` keeps a stated value of it on validation
  (`scoring.abstention.choose_confidence`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skinpamper.classes import CODES

MEL = CODES.index("mel")
RULE_OUT_SENSITIVITY = 0.90


@dataclass(frozen=True)
class RuleOut:
    """A melanoma cut fitted on validation and what it gave there."""

    threshold: float  # calibrated p(mel) at or above which melanoma is not ruled out
    sensitivity: float  # share of validation melanomas at or above it
    specificity: float  # share of validation non-melanomas below it
    target: float  # the sensitivity asked for

    def flags(self, probabilities: np.ndarray) -> np.ndarray:
        """(N,) bool: melanoma not ruled out."""
        return np.asarray(probabilities)[:, MEL] >= self.threshold


def fit_rule_out(
    probabilities: np.ndarray, y_true: np.ndarray, sensitivity: float = RULE_OUT_SENSITIVITY
) -> RuleOut:
    """The highest cut on p(mel) that keeps `sensitivity` of the melanomas at or above it."""
    p_mel, is_mel = np.asarray(probabilities)[:, MEL], np.asarray(y_true) == MEL
    if not is_mel.any() or is_mel.all():
        raise ValueError("a melanoma cut needs melanomas and other lesions")
    threshold = float(np.quantile(p_mel[is_mel], 1 - sensitivity, method="lower"))
    flagged = p_mel >= threshold
    return RuleOut(threshold, float(flagged[is_mel].mean()), float((~flagged)[~is_mel].mean()), sensitivity)


def rule_out_effect(rule: RuleOut, probabilities: np.ndarray, y_true: np.ndarray) -> dict[str, float | None]:
    """Sensitivity and specificity of the cut on a labelled set (None where a side has no images)."""
    flagged, is_mel = rule.flags(probabilities), np.asarray(y_true) == MEL
    return {
        "threshold": rule.threshold,
        "sensitivity": float(flagged[is_mel].mean()) if is_mel.any() else None,
        "specificity": float((~flagged)[~is_mel].mean()) if (~is_mel).any() else None,
        "flagged_share": float(flagged.mean()),
    }


def mel_sensitivity(y_true: np.ndarray, probabilities: np.ndarray, kept: np.ndarray) -> float | None:
    """Share of the kept melanomas whose top class is melanoma; None when none is kept."""
    chosen = np.asarray(kept) & (np.asarray(y_true) == MEL)
    if not chosen.any():
        return None
    return float((np.asarray(probabilities)[chosen].argmax(axis=1) == MEL).mean())
