"""The one inference chain: model -> 8-view TTA -> temperature -> metadata -> OOD score -> status.

Every door scores images here (`evaluate`, `predict`, `predict --out`, Ray, the Python `Predictor`
and the service), so an image gets the same probabilities and status whichever door it came in by.
The chain is Keras-free: it is handed an `Engine`, the run's Keras model with its OOD head or the
ONNX session of its export, and applies the rest in NumPy. The status reads the image-only
calibrated probabilities: metadata may move a prediction, but it says nothing about whether the
image itself is strange or the model unsure of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from skinpamper.scoring.abstention import UNCHECKED, Abstention
from skinpamper.scoring.calibration import apply_temperature
from skinpamper.scoring.metadata_model import MetadataModel, fuse
from skinpamper.scoring.tta import predict_tta

# float32 (N, S, S, 3) in 0..255 -> probabilities (N, 7) and OOD scores (N,), or None without a
# detector, then, where the run has a dermoscopy detector, its log-odds of "not dermoscopy" (N,)
Engine = Callable[[np.ndarray], tuple[np.ndarray | None, ...]]
BATCH = 256  # images per engine call: at most one float32 batch (or view of one) exists at once


@dataclass(frozen=True)
class Scored:
    """What the chain says of a batch of images, one row per image."""

    probabilities: np.ndarray  # what users see: TTA when on, calibrated, fused with metadata where known
    image_probabilities: np.ndarray  # the same before metadata; the status reads these
    uncalibrated: np.ndarray  # before the temperature (TTA when on), for calibration figures
    ood_scores: np.ndarray | None  # of each image as it is (no TTA); None without a detector
    statuses: list[str]  # scoring.abstention statuses; "unchecked" without a detector
    with_metadata: np.ndarray  # bool: the image's metadata changed its probabilities
    not_dermoscopy: np.ndarray | None = None  # log-odds of each image; None without the detector


@dataclass(frozen=True)
class Chain:
    """A run's model and everything fitted after it, applied in one fixed order."""

    engine: Engine
    temperature: float | None = None  # None: a run saved before calibration; probabilities stay raw
    tta: bool = False
    metadata: MetadataModel | None = None
    abstention: Abstention | None = None

    @property
    def checks_status(self) -> bool:
        """Whether images get a real status: the run has an OOD detector and thresholds."""
        return self.abstention is not None

    def evidence(self, patients: pd.DataFrame, source: str, strict: bool = True) -> np.ndarray | None:
        """(N, 7) log-evidence of the patients' age, sex and site; None without a metadata model or
        where nothing is known. `strict=False` counts unseen sexes and sites as unknown."""
        if self.metadata is None:
            return None
        evidence = self.metadata.log_likelihood(patients, source, strict)
        return evidence if evidence.any() else None

    def score(self, images_uint8: np.ndarray, evidence: np.ndarray | None = None) -> Scored:
        """Score (N, S, S, 3) uint8 images; `evidence` (from `evidence`) fuses their metadata."""
        raw, ood, not_dermoscopy = self._forward(images_uint8)
        if self.tta:
            raw = predict_tta(lambda views: self.engine(views)[0], images_uint8, BATCH)
        raw = np.asarray(raw, dtype=np.float64)
        calibrated = raw if self.temperature is None else apply_temperature(raw, self.temperature)
        used = np.zeros(len(raw), dtype=bool)
        reported = calibrated
        if evidence is not None:
            reported, used = fuse(calibrated, evidence), evidence.any(axis=1)
        rules = self.abstention
        if rules is None or ood is None:
            statuses = [UNCHECKED] * len(raw)
        else:
            statuses = rules.statuses(ood, calibrated, self.tta, not_dermoscopy)
        return Scored(reported, calibrated, raw, ood, statuses, used, not_dermoscopy)

    def _forward(self, images_uint8: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Plain probabilities, OOD scores and log-odds of "not dermoscopy", `BATCH` images per
        engine call (None for the scores an engine does not give)."""
        batches = [
            self.engine(images_uint8[start : start + BATCH].astype(np.float32))
            for start in range(0, len(images_uint8), BATCH)
        ]

        probs = np.concatenate([np.asarray(b[0], dtype=np.float64) for b in batches])
        return probs, _scores(batches, 1), _scores(batches, 2)


def _scores(batches: list[tuple[np.ndarray | None, ...]], i: int) -> np.ndarray | None:
    """Output `i` of every batch as one (N,) array; None where the engine does not give it."""
    if len(batches[0]) <= i or batches[0][i] is None:
        return None
    return np.concatenate([np.asarray(b[i], dtype=np.float64).reshape(-1) for b in batches])
