"""What a trained run says about when to trust it: OOD detector, abstention thresholds, subgroups.

`fit_abstention`: the detector learns the training split's features; its threshold and the confidence
thresholds are set on the validation split; the test split is only scored. Confidence thresholds are
fitted for plain and for 8-view TTA probabilities (calibrated with the run's temperature), because
TTA's averaged probabilities are less peaked and `predict` uses TTA by default while the service does
not. `trust_on_test`: the test split's figures per subgroup and its risk-coverage curve, for the run
report and the model card.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from skinpamper.data.dataset import Dataset
from skinpamper.data.splits import Split
from skinpamper.models.features import feature_model
from skinpamper.scoring.abstention import Abstention, abstention_summary, choose_confidence, risk_coverage
from skinpamper.scoring.calibration import apply_temperature
from skinpamper.scoring.ood import SCORE_NAME, OODDetector, fit_detector, fit_threshold
from skinpamper.scoring.subgroups import subgroup_report
from skinpamper.scoring.tta import predict_tta
from skinpamper.training.config import TrainConfig
from skinpamper.training.pipeline import make_eval_dataset

BATCH = 256  # inference only


def probabilities_and_features(scorer: keras.Model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and features of uint8 images, in order, from a `feature_model`."""
    probs, features = scorer.predict(make_eval_dataset(images, BATCH), verbose=0)
    return np.asarray(probs, dtype=np.float64), np.asarray(features, dtype=np.float64)


def fit_abstention(
    model: keras.Model, dataset: Dataset, split: Split, config: TrainConfig, temperature: float
) -> tuple[OODDetector, Abstention, dict[str, Any]]:
    """The detector (training split), the rules (validation split), and what they do to val and test."""
    scorer = feature_model(model)
    _, train_features = probabilities_and_features(scorer, dataset.images[split.train])
    detector = fit_detector(train_features, dataset.labels[split.train])
    scored = {}
    for part, idx in (("val", split.val), ("test", split.test)):
        probs, features = probabilities_and_features(scorer, dataset.images[idx])
        scored[part] = (detector.score(features), apply_temperature(probs, temperature), dataset.labels[idx])
    val_scores, val_probs, val_labels = scored["val"]
    val_tta = predict_tta(lambda x: np.asarray(model.predict_on_batch(x)), dataset.images[split.val], BATCH)
    target = config.abstention_target
    rules = Abstention(
        score=SCORE_NAME,
        ood_keep=config.ood_keep,
        ood_threshold=fit_threshold(val_scores, config.ood_keep),
        target_balanced_accuracy=target,
        confidence={
            "plain": choose_confidence(val_probs, val_labels, target),
            "tta": choose_confidence(apply_temperature(val_tta, temperature), val_labels, target),
        },
    )
    summary = {part: abstention_summary(rules, *values) for part, values in scored.items()}
    return detector, rules, summary


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
