"""What a trained run says about when to trust it: detectors, abstention thresholds, subgroups.

`fit_abstention`: the OOD detector learns the training split's features, and the dermoscopy detector
those of the training split, plain and under simulated clinic shifts, against synthetic pictures that
are not dermoscopy; their thresholds, the confidence thresholds and the melanoma rule-out cut are set
on the validation split (plain and shifted for the detectors); the test split is only scored.
Confidence thresholds and the rule-out cut are fitted for plain and for 8-view TTA probabilities
(calibrated with the run's temperature), because TTA's averaged probabilities are less peaked and
`predict` uses TTA by default while the service does not. `trust_on_test`: the test split's figures
per subgroup and its risk-coverage curve, for the run report and the model card.
"""

from __future__ import annotations

import functools
from typing import Any

import keras
import numpy as np
from PIL import Image

from skinpamper.data.dataset import Dataset
from skinpamper.data.splits import Split
from skinpamper.imaging import fit_square
from skinpamper.models.features import feature_model
from skinpamper.scoring.abstention import Abstention, abstention_summary, choose_confidence, risk_coverage
from skinpamper.scoring.calibration import apply_temperature
from skinpamper.scoring.dermoscopy import DermoscopyDetector, fit_dermoscopy_detector
from skinpamper.scoring.melanoma import MEL, RuleOut, fit_rule_out
from skinpamper.scoring.not_dermoscopy import not_dermoscopy
from skinpamper.scoring.ood import SCORE_NAME, OODDetector, fit_detector, fit_threshold
from skinpamper.scoring.shifts import random_shift
from skinpamper.scoring.subgroups import subgroup_report
from skinpamper.scoring.tta import predict_tta
from skinpamper.training.config import TrainConfig
from skinpamper.training.pipeline import make_eval_dataset

BATCH = 256  # inference only
SHIFTED = 1500  # training images also seen under a simulated clinic shift by the dermoscopy detector
NEGATIVES = 600  # synthetic non-dermoscopy pictures it is fitted against


def probabilities_and_features(scorer: keras.Model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and features of uint8 images, in order, from a `feature_model`."""
    probs, features = scorer.predict(make_eval_dataset(images, BATCH), verbose=0)
    return np.asarray(probs, dtype=np.float64), np.asarray(features, dtype=np.float64)


def shifted(images: np.ndarray, config: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """Each image under one to three random clinic shifts, back at the run's size and fit."""
    size, fit = config.image_size, config.fit
    return np.stack([fit_square(Image.fromarray(random_shift(i, rng)), size, fit) for i in images])


def fit_dermoscopy(
    scorer: keras.Model, train_features: np.ndarray, images: np.ndarray, config: TrainConfig
) -> DermoscopyDetector:
    """Positives: the training split's features, plus those of up to SHIFTED of its images shifted;
    negatives: NEGATIVES synthetic pictures (`scoring.not_dermoscopy`), all at the run's size and fit."""
    rng = np.random.default_rng(config.seed)
    chosen = rng.choice(len(images), min(SHIFTED, len(images)), replace=False)
    _, shifted_features = probabilities_and_features(scorer, shifted(images[chosen], config, rng))
    pictures = negatives(config.image_size, config.fit)
    _, negative_features = probabilities_and_features(scorer, pictures)
    return fit_dermoscopy_detector(np.concatenate([train_features, shifted_features]), negative_features)


@functools.lru_cache(maxsize=4)
def negatives(size: int, fit: str) -> np.ndarray:
    """The NEGATIVES synthetic pictures at a run's size and fit: the same pictures for every run.

    Drawing them takes about 12 s (matplotlib figures, 1/f noise) and they stand for "not dermoscopy",
    which depends on no run's seed, so they come from one fixed random stream and a process draws them
    once per size: every member of an ensemble, the ensemble itself, and a test session's many runs
    reuse them. Read-only, as a cached value must be.
    """
    pictures = not_dermoscopy(np.random.default_rng(NEGATIVES), NEGATIVES)
    squares = np.stack([fit_square(picture, size, fit) for picture in pictures])
    squares.flags.writeable = False
    return squares


def fit_abstention(
    model: keras.Model, dataset: Dataset, split: Split, config: TrainConfig, temperature: float
) -> tuple[OODDetector, DermoscopyDetector, Abstention, dict[str, Any]]:
    """The detectors (training split), the rules (validation split), and what they do to val and test."""
    scorer = feature_model(model)
    _, train_features = probabilities_and_features(scorer, dataset.images[split.train])
    detector = fit_detector(train_features, dataset.labels[split.train])
    dermoscopy = fit_dermoscopy(scorer, train_features, dataset.images[split.train], config)
    scored = {}
    for part, idx in (("val", split.val), ("test", split.test)):
        probs, features = probabilities_and_features(scorer, dataset.images[idx])
        scored[part] = (detector.score(features), apply_temperature(probs, temperature), dataset.labels[idx])
        scored[part] += (False, dermoscopy.score(features))
    val_scores, val_probs, val_labels = scored["val"][:3]
    rng = np.random.default_rng(config.seed + 1)
    _, moved = probabilities_and_features(scorer, shifted(dataset.images[split.val], config, rng))
    keep = config.dermoscopy_keep
    val_tta = predict_tta(lambda x: np.asarray(model.predict_on_batch(x)), dataset.images[split.val], BATCH)
    val_tta = apply_temperature(val_tta, temperature)
    rules = Abstention(
        score=SCORE_NAME,
        ood_keep=config.ood_keep,
        ood_threshold=fit_threshold(val_scores, config.ood_keep),
        target_balanced_accuracy=config.abstention_target,
        confidence={
            view: choose_confidence(
                p, val_labels, config.abstention_target, mel_target=config.ok_mel_sensitivity
            )
            for view, p in (("plain", val_probs), ("tta", val_tta))
        },
        dermoscopy_threshold=fit_threshold(np.r_[scored["val"][4], dermoscopy.score(moved)], keep),
        far_ood_threshold=fit_threshold(np.r_[val_scores, detector.score(moved)], keep),
        dermoscopy_keep=keep,
        target_mel_sensitivity=config.ok_mel_sensitivity,
        melanoma=_rule_outs(val_probs, val_tta, val_labels, config.mel_rule_out_sensitivity),
    )
    summary = {part: abstention_summary(rules, *values) for part, values in scored.items()}
    return detector, dermoscopy, rules, summary


def _rule_outs(
    plain: np.ndarray, tta: np.ndarray, labels: np.ndarray, sensitivity: float
) -> dict[str, RuleOut] | None:
    """The melanoma rule-out cut for plain and TTA probabilities; None where validation has no
    melanoma, or nothing else, to fit it on."""
    if not (np.any(labels == MEL) and np.any(labels != MEL)):
        return None
    return {view: fit_rule_out(p, labels, sensitivity) for view, p in (("plain", plain), ("tta", tta))}


def trust_on_test(
    dataset: Dataset, split: Split, test_probs: np.ndarray, temperature: float, seed: int
) -> dict[str, Any]:
    """Subgroup figures of the test split's probabilities, and the risk-coverage of their calibration."""
    test = dataset.subset(split.test)
    lesions = test.meta["lesion_id"].astype(str).to_numpy() if test.has_lesion_ids else None
    return {
        "subgroups": subgroup_report(test.labels, test_probs, test.meta, lesions, seed=seed),
        "risk_coverage": risk_coverage(test.labels, apply_temperature(test_probs, temperature)),
    }
