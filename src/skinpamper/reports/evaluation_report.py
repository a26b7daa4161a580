"""`write_evaluation_report`: one self-contained HTML page and a Markdown summary per evaluation.

The page puts what a reader needs to trust or distrust the figures in one file that opens offline:
what the model was trained on (from the run folder), what it was scored on, every figure with its
bootstrap interval, with and without test-time augmentation side by side, how well its confidence
matches its accuracy, and where it fails, with images.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from skinpamper import NOT_A_DIAGNOSIS
from skinpamper.classes import CLASSES, CODES
from skinpamper.data.summary import Table
from skinpamper.evaluation.evaluate import Evaluation, evaluation_summary
from skinpamper.reports.evaluation_plots import (
    plot_confident_mistakes,
    plot_gradcam_grid,
    plot_precision_recall,
    plot_reliability,
    plot_roc_curves,
)
from skinpamper.reports.html import figure_item, render_template, write_files
from skinpamper.reports.model_card import abstention_record, model_card
from skinpamper.reports.plots import plot_confusion_matrix
from skinpamper.reports.run_report import config_table, data_tables, history_figure, percent, split_table
from skinpamper.reports.trust import trust_context
from skinpamper.runfolder import RunFolder
from skinpamper.runfolder.files import CONFIG, DATASET

TTA_NAME = "8-view TTA"
METADATA_NAME = "with age, sex, site"
PER_CLASS = (  # key in clinical_metrics' per_class, column heading, shown as a percentage
    ("sensitivity", "sensitivity", True),
    ("specificity", "specificity", True),
    ("precision", "precision", True),
    ("f1", "F1", False),
    ("auc", "AUC", False),
    ("average_precision", "AP", False),
)


def _variants(evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    """The metrics of each way the images were scored, plain first."""
    variants = {"plain": evaluation.metrics}
    if evaluation.metrics_tta is not None:
        variants[TTA_NAME] = evaluation.metrics_tta
    if evaluation.metrics_metadata is not None:
        variants[METADATA_NAME] = evaluation.metrics_metadata
    return variants


def _number(value: float | None, as_percent: bool) -> str:
    if value is None:
        return "n/a"
    return percent(value) if as_percent else f"{value:.3f}"


def _with_interval(value: float | None, interval: list[float] | None, as_percent: bool) -> str:
    """'61.2% (55.0-66.3%)': the figure and its bootstrap 95% interval where there is one."""
    text = _number(value, as_percent)
    if value is None or not interval:
        return text
    low, high = (_number(v, as_percent).rstrip("%") for v in interval)
    return f"{text} ({low}-{high}{'%' if as_percent else ''})"


def _evaluated_set_table(evaluation: Evaluation) -> Table:
    counts = np.bincount(evaluation.y_true, minlength=len(CODES))
    names = {d.code: d.name for d in CLASSES}
    total = max(len(evaluation.y_true), 1)
    rows = [(code, names[code], f"{n:,}", percent(n / total)) for code, n in zip(CODES, counts, strict=True)]
    unit = evaluation.metrics["bootstrap"]["unit"]
    note = f"Scored: {evaluation.part} of {evaluation.data}. Bootstrap intervals resample by {unit}" + (
        " (images of one lesion are not independent)." if unit == "lesion" else "."
    )
    return Table(
        "Evaluated images per class", ("code", "diagnosis", "images", "share"), tuple(rows), "llrr", note
    )


def _headline_table(variants: dict[str, dict[str, Any]]) -> Table:
    """Headline figures by row, one column per way of scoring, intervals in brackets."""
    scorings = list(variants.values())
    first = scorings[0]

    def row(label: str, value: Callable[[dict], float | None], ci: str | None, pct: bool) -> tuple[str, ...]:
        return (label, *(_with_interval(value(m), m["ci95"].get(ci) if ci else None, pct) for m in scorings))

    rows = [
        ("images", *(f"{m['n']:,}" for m in scorings)),
        row("accuracy", itemgetter("accuracy"), "accuracy", True),
        row("balanced accuracy (mean recall)", itemgetter("balanced_accuracy"), "balanced_accuracy", True),
        row("macro ROC AUC", itemgetter("macro_auc"), "macro_auc", False),
        *(
            row(
                f"melanoma sensitivity at {round(100 * float(spec))}% specificity",
                lambda m, spec=spec: m["mel_sensitivity_at_specificity"][spec],
                "mel_sensitivity_at_90" if spec == "0.9" else None,  # the one spec the bootstrap covers
                True,
            )
            for spec in first["mel_sensitivity_at_specificity"]
        ),
        row("expected calibration error", itemgetter("ece"), None, False),
        row("Brier score", itemgetter("brier"), None, False),
    ]
    n_boot = first["bootstrap"]["n_boot"]
    intervals = f"Brackets: bootstrap 95% interval ({n_boot:,} resamples). " if n_boot else "No bootstrap. "
    tta = (
        "TTA averages the probabilities of the 8 flips and rotations of each image."
        if TTA_NAME in variants
        else "Test-time augmentation was not run (skinpamper evaluate --tta)."
    )
    if METADATA_NAME in variants:
        tta += (
            f" '{METADATA_NAME}' multiplies the calibrated{' TTA' if TTA_NAME in variants else ''} "
            "probabilities by what the run's metadata model (fitted on its training split) says."
        )
    return Table(
        "Headline figures, by way of scoring",
        ("metric", *variants),
        tuple(rows),
        "l" + "r" * len(variants),
        intervals + tta,
    )


def _per_class_table(name: str, metrics: dict[str, Any]) -> Table:
    rows = tuple(
        (code, f"{values['support']:,}", *(_number(values[key], pct) for key, _, pct in PER_CLASS))
        for code, values in metrics["per_class"].items()
    )
    columns = ("class", "images", *(heading for _, heading, _ in PER_CLASS))
    return Table(
        f"Per class, {name}", columns, rows, "lr" + "r" * len(PER_CLASS), "One class against the rest."
    )


def _calibration_table(calibration: dict[str, float]) -> Table:
    rows = (
        ("temperature", f"{calibration['temperature']:.3f}", ""),
        ("expected calibration error", f"{calibration['ece_before']:.3f}", f"{calibration['ece_after']:.3f}"),
        ("Brier score", f"{calibration['brier_before']:.3f}", f"{calibration['brier_after']:.3f}"),
    )
    note = (
        "The temperature was fitted on the run's validation split and is applied at prediction time; "
        "it changes confidence, never the predicted class. Figures are for plain (single-view) scoring."
    )
    return Table("Temperature scaling", ("", "before", "after"), rows, "lrr", note)


def _image_figures(evaluation: Evaluation, scored: str) -> dict[str, list[dict[str, str]]]:
    """Grad-CAM and mistakes: figures of the images themselves, when the evaluation carries them."""
    if evaluation.images is None:
        return {"gradcam": [], "mistakes": []}
    y_true, probs = evaluation.y_true, evaluation.reported_probs
    mistakes = plot_confident_mistakes(evaluation.images, y_true, probs, evaluation.image_ids)
    figures = {
        "gradcam": [],
        "mistakes": [
            figure_item(
                mistakes,
                "Most confident mistakes",
                f"Wrong predictions the model was surest of ({scored}): label noise or blind spots.",
            )
        ],
    }
    rows = evaluation.gradcam_rows
    if rows is not None and evaluation.gradcam_maps is not None:
        grid = plot_gradcam_grid(
            evaluation.images[rows], evaluation.gradcam_maps, y_true[rows], evaluation.probs[rows]
        )
        caption = (
            "Where the evidence for the predicted class lies (red), for the most confident correct and "
            "wrong example of each class, single view. A map on the skin around a lesion, a ruler or a "
            "vignette is a warning sign."
        )
        figures["gradcam"].append(figure_item(grid, "Grad-CAM", caption))
    return figures


def _figures(evaluation: Evaluation) -> dict[str, list[dict[str, str]]]:
    """Every figure of the page, grouped by section."""
    y_true, probs = evaluation.y_true, evaluation.reported_probs
    scored = f"{TTA_NAME} probabilities" if evaluation.probs_tta is not None else "plain probabilities"
    before, after = evaluation.probs, None
    if evaluation.calibration is not None and evaluation.probs_uncalibrated is not None:
        before, after = evaluation.probs_uncalibrated, evaluation.probs
    reported = evaluation.metrics if evaluation.metrics_tta is None else evaluation.metrics_tta
    matrix = np.asarray(reported["confusion_matrix"])
    return {
        "calibration": [
            figure_item(
                plot_reliability(y_true, before, after),
                "Reliability diagram",
                "Accuracy per confidence bin (plain scoring); bars below the diagonal are over-confidence.",
            )
        ],
        "confusion": [
            figure_item(
                plot_confusion_matrix(matrix, normalise, "Confusion matrix"),
                f"Confusion matrix, {'row-normalised' if normalise else 'counts'}",
                f"True class by row, predicted by column, from the {scored}.",
            )
            for normalise in (True, False)
        ],
        "curves": [
            figure_item(
                plot_roc_curves(y_true, probs), "ROC per class", f"One class against the rest, {scored}."
            ),
            figure_item(
                plot_precision_recall(y_true, probs),
                "Precision-recall per class",
                f"How many false alarms come with each find, {scored}; rare classes show it best.",
            ),
        ],
        **_image_figures(evaluation, scored),
    }


def _subtitle(evaluation: Evaluation, config: dict[str, Any]) -> str:
    """What was scored, by which model: the context every figure below depends on."""
    scored = "all images" if evaluation.part == "all" else f"the {evaluation.part} split"
    model = f"model {config['model']} at {config.get('image_size', '?')} px, " if "model" in config else ""
    return f"{evaluation.metrics['n']:,} images, {scored} of {evaluation.data}; {model}run {evaluation.run}."


def _markdown(name: str, evaluation: Evaluation, config: dict[str, Any]) -> str:
    """A short table of the headline figures and per-class recall, to paste into a README."""
    variants = _variants(evaluation)
    lines = [
        f"## Evaluation of `{name}` on {evaluation.part} ({evaluation.metrics['n']:,} images)",
        "",
        "| scoring | accuracy | balanced accuracy (95% CI) | macro AUC | mel sens. at 90% spec. | ECE |",
        "|:--|--:|--:|--:|--:|--:|",
    ]
    for variant, m in variants.items():
        cells = (
            _with_interval(m["accuracy"], None, True),
            _with_interval(m["balanced_accuracy"], m["ci95"]["balanced_accuracy"], True),
            _number(m["macro_auc"], False),
            _number(m["mel_sensitivity_at_specificity"]["0.9"], True),
            f"{m['ece']:.3f}",
        )
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines += ["", "| recall | " + " | ".join(CODES) + " |", "|:--|" + "--:|" * len(CODES)]
    for variant, m in variants.items():
        recalls = (_number(m["per_class"][code]["sensitivity"], True) for code in CODES)
        lines.append(f"| {variant} | " + " | ".join(recalls) + " |")
    facts = [f"Data: {evaluation.data}."]
    if isinstance(config.get("model"), str):
        facts.insert(0, f"Model: {config['model']} at {config.get('image_size', '?')} px.")
    if evaluation.calibration is not None:
        c = evaluation.calibration
        ece = f"ECE {c['ece_before']:.3f} -> {c['ece_after']:.3f}"
        facts.append(f"Temperature {c['temperature']:.2f} (fitted on validation): {ece}.")
    lines += ["", " ".join(facts), "", f"> {NOT_A_DIAGNOSIS}", ""]
    return "\n".join(lines)


def write_evaluation_report(evaluation: Evaluation, out_dir: str | Path) -> tuple[Path, Path]:
    """Write report.html (figures inlined), summary.md and model_card.md into `out_dir`; returns the
    first two paths.

    The run's own files (dataset.json, config.json, history.csv) add the training sections when present.
    """
    out = Path(out_dir)
    run_dir = Path(evaluation.run)
    folder = RunFolder(run_dir)
    data = folder.read(DATASET) or {}
    config = folder.read(CONFIG) or {}
    history = folder.history_frame()
    variants = _variants(evaluation)
    name = run_dir.resolve().name
    sizes = data.get("split_sizes")
    page = render_template(
        "evaluation.html",
        title=f"Evaluation: {name} on {evaluation.part}",
        subtitle=_subtitle(evaluation, config),
        disclaimer=NOT_A_DIAGNOSIS,
        evaluated_table=_evaluated_set_table(evaluation),
        data_tables=data_tables(data) if data else [],
        ungrouped=data.get("grouped") is False,
        split_table=split_table(sizes, data.get("split_class_counts")) if sizes else None,
        config_table=config_table(config) if config else None,
        history_figure=None if history is None else history_figure(history),
        metrics_table=_headline_table(variants),
        per_class_tables=[_per_class_table(n, m) for n, m in variants.items()],
        calibration_table=None
        if evaluation.calibration is None
        else _calibration_table(evaluation.calibration),
        figures=_figures(evaluation),
        trust=trust_context(
            evaluation.subgroups,
            evaluation.abstention,
            abstention_record(folder),
            evaluation.risk_coverage,
            evaluation.probs_tta is not None,
            f"{TTA_NAME} probabilities" if evaluation.probs_tta is not None else "plain probabilities",
        ),
    )
    write_files(
        out,
        {
            "report.html": page.encode("utf-8"),
            "summary.md": _markdown(name, evaluation, config).encode("utf-8"),
            "model_card.md": model_card(run_dir, evaluation_summary(evaluation)).encode("utf-8"),
        },
    )
    return out / "report.html", out / "summary.md"
