"""`evaluate(run_dir, dataset=None)`: score a trained run on its own test split or on any labelled set.

Images go through exactly the run's preprocessing (same image size and fit at load, scaling inside the
model) and the one inference chain `predict` and the service use (`scoring.chain`), so every
probability here is the calibrated one a user of the run sees for the same image. With `tta=True`
each image is also scored as the mean over the 8 flips/rotations of the square, and both sets of
figures are kept so the report can show the difference. Where the run has a metadata model and the
images have age, sex or site, a third set scores the (TTA when run) probabilities combined with what
the metadata says (`metadata_model`). The reported probabilities are also broken down by subgroup
(sex, age band, site, ...: `scoring.subgroups`), ranked by confidence (risk-coverage), and, where the
run has an OOD detector, given the status `predict` gives them, so the report shows what refusing the
strange and the unsure costs and buys on this set. The evaluated images and Grad-CAM maps of a few
examples travel with the result, so the report needs neither data nor model.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from skinpamper.atomic import write_json_atomic, write_text_atomic
from skinpamper.classes import CODES
from skinpamper.data.dataset import Dataset
from skinpamper.data.splits import SPLIT_NAMES
from skinpamper.errors import ConfigError
from skinpamper.evaluation.explain import gradcam, gradcam_examples
from skinpamper.evaluation.outputs import EVALUATION_METRICS, STATUS_TABLE, outputs_text
from skinpamper.runfolder import refuse_run_folder
from skinpamper.scoring.abstention import Abstention, abstention_summary, risk_coverage
from skinpamper.scoring.calibration import temperature_effect
from skinpamper.scoring.chain import Chain, Scored
from skinpamper.scoring.clinical import clinical_metrics
from skinpamper.scoring.subgroups import subgroup_report
from skinpamper.training.run import Run

EVALUATION_FILES = outputs_text()


@dataclass(frozen=True)
class Evaluation:
    """Predictions and metrics of one run on one set of images."""

    run: str
    data: str
    part: str  # "test", "val", "train", or "all" for an external set
    image_ids: list[str]
    y_true: np.ndarray
    probs: (
        np.ndarray
    )  # plain (single view), calibrated with the run's temperature: what predict --no-tta says
    metrics: dict[str, Any]  # of `probs`
    probs_uncalibrated: np.ndarray | None = None  # `probs` before the temperature, for calibration figures
    probs_tta: np.ndarray | None = None  # 8-view TTA, calibrated: what predict says
    metrics_tta: dict[str, Any] | None = None
    calibration: dict[str, float] | None = None  # the run's temperature and its effect on this set
    probs_metadata: np.ndarray | None = None  # reported probs times the metadata evidence
    metrics_metadata: dict[str, Any] | None = None
    images: np.ndarray | None = None  # the evaluated images (uint8), for the report's image figures
    gradcam_rows: np.ndarray | None = None  # rows of `images` explained by Grad-CAM
    gradcam_maps: np.ndarray | None = None  # their heatmaps (single view, predicted class)
    risk_coverage: dict[str, Any] | None = None  # of the reported probabilities
    subgroups: dict[str, Any] | None = None  # scoring.subgroups.subgroup_report of the reported probs
    ood_scores: np.ndarray | None = None  # per image; None for a run without an OOD detector
    statuses: list[str] | None = None  # what predict would say of each image, from the reported probs
    not_dermoscopy: np.ndarray | None = None  # log-odds per image; None for a run without the detector
    abstention: dict[str, Any] | None = None  # scoring.abstention.abstention_summary of the statuses

    @property
    def reported_probs(self) -> np.ndarray:
        """The image probabilities predictions.csv holds: 8-view TTA when computed, else the plain ones."""
        return self.probs if self.probs_tta is None else self.probs_tta


def _images_of(run: Run, dataset: Dataset, part: str, external: bool) -> tuple[Dataset, str]:
    if external:
        # Honest figures: a set holding images the model learnt from would flatter it.
        seen = set(dataset.meta["image_id"].astype(str)) & set(run.split_ids().get("train", ()))
        if seen:
            raise ConfigError(
                f"{dataset.source}: holds {len(seen):,} of the run's training images; score the run's "
                "own data on a part of its split, else give a set of other images"
            )
        return dataset, "all"
    if part not in SPLIT_NAMES:
        raise ConfigError(f"unknown split {part!r}; choose one of {', '.join(SPLIT_NAMES)}")
    return dataset.subset(run.split(dataset).parts()[part]), part


def evaluate(
    run_dir: str | Path,
    dataset: Dataset,
    part: str = "test",
    external: bool = False,
    tta: bool = False,
    n_boot: int = 1000,
    explain: bool = True,
) -> Evaluation:
    """Score the run's best model on `part` of its own split, or (external=True) on all of `dataset`.

    `dataset` must be loaded at the run's image size and fit (`Run.config()` has both). `explain`
    adds Grad-CAM maps of one correct and one wrong example per class.
    """
    run = Run.open(run_dir)
    config = run.config()
    if dataset.image_size != (config.image_size, config.image_size):
        raise ConfigError(
            f"{dataset.source}: images are {dataset.image_size[0]} px but the run was trained at "
            f"{config.image_size} px; load the data at --image-size {config.image_size}"
        )
    images, part = _images_of(run, dataset, part, external)
    lesions = images.meta["lesion_id"].astype(str).to_numpy() if images.has_lesion_ids else None
    model = run.load_model()
    chain = run_chain(run, model)
    # Not strict: a site the training split lacked, or another archive's naming, counts as unknown;
    # how many values that hit is recorded beside the scores.
    evidence = chain.evidence(images.meta, dataset.source, strict=False)
    plain = chain.score(images.images, None if tta else evidence)
    views = replace(chain, tta=True).score(images.images, evidence) if tta else None
    reported = plain if views is None else views

    def metrics_of(probs: np.ndarray) -> dict[str, Any]:
        return clinical_metrics(images.labels, probs, lesions, n_boot=n_boot, seed=config.seed)

    metrics_metadata = None
    if chain.metadata is not None and evidence is not None:
        metrics_metadata = metrics_of(reported.probabilities)
        metrics_metadata["unseen_values_ignored"] = chain.metadata.unseen(images.meta)
    temperature = chain.temperature
    rows = gradcam_examples(images.labels, plain.image_probabilities) if explain else None
    return Evaluation(
        **_trust(chain.abstention, images.labels, reported, views is not None),
        subgroups=subgroup_report(
            images.labels, reported.image_probabilities, images.meta, lesions, n_boot, config.seed
        ),
        calibration=None
        if temperature is None
        else temperature_effect(images.labels, plain.uncalibrated, temperature),
        run=str(run.path),
        data=dataset.source,
        part=part,
        image_ids=images.meta["image_id"].astype(str).tolist(),
        y_true=images.labels,
        probs=plain.image_probabilities,
        probs_uncalibrated=plain.uncalibrated,
        metrics=metrics_of(plain.image_probabilities),
        probs_tta=None if views is None else views.image_probabilities,
        metrics_tta=None if views is None else metrics_of(views.image_probabilities),
        probs_metadata=None if evidence is None else reported.probabilities,
        metrics_metadata=metrics_metadata,
        images=images.images,
        gradcam_rows=rows,
        gradcam_maps=None if rows is None else gradcam(model, images.images[rows]),
    )


def run_chain(run: Run, model: keras.Model) -> Chain:
    """The inference chain of a run folder: its model with the OOD head, temperature, metadata model and
    abstention rules, as `Predictor.load` builds it (without TTA; `replace(chain, tta=True)` adds it)."""
    saved = run.abstention()
    return Chain(
        run.engine(model),
        run.temperature(),
        metadata=run.metadata_model(),
        abstention=None if saved is None else saved[1],
    )


def _trust(rules: Abstention | None, y_true: np.ndarray, scored: Scored, tta: bool) -> dict[str, Any]:
    """Risk-coverage of the calibrated image probabilities and, with a detector, each image's status."""
    calibrated = scored.image_probabilities
    trust: dict[str, Any] = {"risk_coverage": risk_coverage(y_true, calibrated)}
    if rules is not None and scored.ood_scores is not None:
        trust["ood_scores"] = scored.ood_scores
        trust["statuses"] = scored.statuses
        trust["not_dermoscopy"] = scored.not_dermoscopy
        trust["abstention"] = abstention_summary(
            rules, scored.ood_scores, calibrated, y_true, tta, scored.not_dermoscopy
        )
    return trust


def predictions_table(evaluation: Evaluation) -> pd.DataFrame:
    """One row per image: id, true class, predicted class and every class's probability, then the same
    with metadata where it was used."""
    probs = evaluation.reported_probs
    table = pd.DataFrame(probs, columns=[f"p_{c}" for c in CODES])
    table.insert(0, "predicted", [CODES[i] for i in probs.argmax(axis=1)])
    table.insert(0, "true", [CODES[i] for i in evaluation.y_true])
    table.insert(0, "image_id", evaluation.image_ids)
    if evaluation.probs_metadata is not None:
        fused = evaluation.probs_metadata
        table["predicted_with_metadata"] = [CODES[i] for i in fused.argmax(axis=1)]
        for column, code in enumerate(CODES):
            table[f"with_metadata_{code}"] = fused[:, column]
    if evaluation.statuses is not None:
        table["status"] = evaluation.statuses
        table["ood_score"] = evaluation.ood_scores
        if evaluation.not_dermoscopy is not None:
            table["not_dermoscopy"] = evaluation.not_dermoscopy
        rule = (evaluation.abstention or {}).get("melanoma_rule_out")
        if rule is not None:
            table["melanoma_not_ruled_out"] = probs[:, CODES.index("mel")] >= rule["threshold"]
    return table


def status_table(summary: dict[str, Any]) -> pd.DataFrame:
    """One row per status: images, share, balanced accuracy, melanomas and melanoma sensitivity."""
    rows = [{"status": status, **figures} for status, figures in summary["by_status"].items()]
    return pd.DataFrame(
        rows, columns=["status", "n", "share", "balanced_accuracy", "melanomas", "mel_sensitivity"]
    )


def evaluation_summary(evaluation: Evaluation) -> dict[str, Any]:
    """What metrics.json holds: every figure of the evaluation, plain JSON."""
    return {
        "run": evaluation.run,
        "data": evaluation.data,
        "part": evaluation.part,
        "plain": evaluation.metrics,
        "tta": evaluation.metrics_tta,
        "with_metadata": evaluation.metrics_metadata,
        "calibration": evaluation.calibration,
        "abstention": evaluation.abstention,
        "risk_coverage": evaluation.risk_coverage,
        "subgroups": evaluation.subgroups,
    }


def write_evaluation(evaluation: Evaluation, out_dir: str | Path) -> Path:
    """metrics.json, predictions.csv (with TTA probabilities when computed) and, for a run with a
    detector, status_table.csv, each written atomically."""
    out = Path(out_dir)
    refuse_run_folder(out, EVALUATION_FILES)
    out.mkdir(parents=True, exist_ok=True)
    summary = evaluation_summary(evaluation)
    buffer = io.StringIO()
    predictions_table(evaluation).to_csv(buffer, index=False, float_format="%.6f")
    write_text_atomic(out / "predictions.csv", buffer.getvalue())
    if evaluation.abstention is not None:
        table = status_table(evaluation.abstention).to_csv(index=False, float_format="%.6f")
        write_text_atomic(out / STATUS_TABLE, table)
    write_json_atomic(out / EVALUATION_METRICS, summary)
    return out
