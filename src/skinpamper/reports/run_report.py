"""`write_run_report`: a self-contained HTML report and a Markdown summary of one run folder.

Built only from the files the run folder holds, read through `runfolder.RunFolder` (dataset.json,
config.json, history.csv, metrics.json, and members.json for an ensemble), so a report can be rebuilt
at any time without the data or the model; a missing file drops its section instead of failing. The
data, split and configuration tables are public: the evaluation report (evaluation_report.py) shows
them too.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skinpamper import NOT_A_DIAGNOSIS
from skinpamper.classes import CLASSES, CODES, NUM_CLASSES
from skinpamper.data.summary import Table
from skinpamper.errors import SkinPamperError
from skinpamper.reports.html import figure_item, render_template, write_files
from skinpamper.reports.model_card import abstention_record, model_card
from skinpamper.reports.plots import plot_confusion_matrix, plot_history
from skinpamper.reports.trust import trust_context
from skinpamper.runfolder import RunFolder
from skinpamper.runfolder.files import CONFIG, DATASET, HISTORY, METRICS

REPORTED_FILES = (DATASET, CONFIG, HISTORY, METRICS)  # a folder with none of them has nothing to show
PARTS = ("val", "test")
METRIC_KEYS = ("n", "accuracy", "balanced_accuracy", "per_class_recall", "confusion_matrix")


def _metric_parts(path: Path, metrics: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The evaluated parts (val, test) of metrics.json, then the same with the patient's metadata where
    the run has a metadata model, checked for every key the report reads."""
    parts = {name: metrics[name] for name in PARTS if metrics and name in metrics}
    fused = (metrics or {}).get("with_metadata") or {}
    parts.update({f"{name} + age, sex, site": fused[name] for name in PARTS if name in fused})
    for name, part in parts.items():
        missing = [key for key in METRIC_KEYS if key not in part]
        if missing:
            raise SkinPamperError(f"{path}: '{name}' lacks {', '.join(missing)}")
        shape = np.shape(part["confusion_matrix"])
        if shape != (NUM_CLASSES, NUM_CLASSES):
            raise SkinPamperError(
                f"{path}: '{name}' confusion_matrix is {shape}, expected {NUM_CLASSES}x{NUM_CLASSES}"
            )
    return parts


def percent(value: float) -> str:
    """0.123 as '12.3%', NaN as 'n/a'."""
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}%"


def _size(value: Any) -> str:
    """28 or [28, 28] as '28 x 28 px'."""
    height, width = (value, value) if isinstance(value, int) else value
    return f"{height} x {width} px"


def data_tables(data: dict[str, Any]) -> list[Table]:
    rows = [("source", str(data["source"]))] if "source" in data else []
    if "images" in data:
        rows.append(("images", f"{data['images']:,}"))
    if "image_size" in data:
        rows.append(("image size", _size(data["image_size"])))
    if "grouped" in data:
        rows.append(("split grouped by lesion", "yes" if data["grouped"] else "no"))
    tables = [Table("Dataset", (), tuple(rows), "ll", str(data.get("note", "")))]
    counts = data.get("class_counts")
    if counts:
        total = sum(counts.values())
        names = {d.code: d.name for d in CLASSES}
        class_rows = tuple(
            (code, names.get(code, ""), f"{n:,}", percent(n / total)) for code, n in counts.items()
        )
        tables.append(Table("Images per class", ("code", "diagnosis", "images", "share"), class_rows, "llrr"))
    return tables


def split_table(sizes: dict[str, int], class_counts: dict[str, dict[str, int]] | None) -> Table:
    """Images per split and, when recorded, per class in each split."""
    codes = list(CODES) if class_counts else []
    by_class = {name: (class_counts or {}).get(name, {}) for name in sizes}
    total = sum(sizes.values())
    rows = [
        (name, f"{n:,}", percent(n / total), *(f"{by_class[name].get(c, 0):,}" for c in codes))
        for name, n in sizes.items()
    ]
    class_totals = (f"{sum(by_class[name].get(c, 0) for name in sizes):,}" for c in codes)
    rows.append(("total", f"{total:,}", "100.0%", *class_totals))
    note = "Few test images of a rare class make its recall a noisy number." if codes else ""
    columns = ("split", "images", "share", *codes)
    return Table("Split sizes", columns, tuple(rows), "lrr" + "r" * len(codes), note)


def flatten_config(config: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested settings as dotted names, so one two-column table shows them all."""
    rows = []
    for key, value in config.items():
        if isinstance(value, dict) and value:
            rows += flatten_config(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value if isinstance(value, str) else json.dumps(value)))
    return rows


def config_table(config: dict[str, Any]) -> Table:
    return Table("Configuration", ("setting", "value"), tuple(flatten_config(config)), "ll")


def members_table(members: list[dict[str, Any]]) -> Table:
    """The runs an ensemble averages, with each one's own test scores."""
    rows = tuple(
        (
            Path(m["run"]).name,
            str(m["seed"]),
            percent(m["test"]["balanced_accuracy"]),
            percent(m["test"]["accuracy"]),
        )
        for m in members
    )
    note = "The model is the mean of these runs' probabilities; its own scores are under Metrics."
    columns = ("member", "seed", "test balanced accuracy", "test accuracy")
    return Table("Ensemble members", columns, rows, "lrrr", note)


def _metrics_table(parts: dict[str, dict[str, Any]]) -> Table:
    """Metrics by row, one column per evaluated part, with the score of always answering the largest class."""
    names = list(parts)
    rows = [
        ("images", *(f"{parts[p]['n']:,}" for p in names)),
        ("accuracy", *(percent(parts[p]["accuracy"]) for p in names)),
        ("balanced accuracy", *(percent(parts[p]["balanced_accuracy"]) for p in names)),
    ]
    rows += [
        (f"recall {code}", *(percent(parts[p]["per_class_recall"].get(code, float("nan"))) for p in names))
        for code in CODES
    ]
    majority = [np.max(np.sum(parts[p]["confusion_matrix"], axis=1)) / max(parts[p]["n"], 1) for p in names]
    rows.append(("accuracy of always answering the largest class", *(percent(m) for m in majority)))
    note = (
        "Balanced accuracy is the mean of the per-class recalls; always answering one class scores "
        f"{percent(1 / NUM_CLASSES)} on it, whatever the class balance."
    )
    return Table(
        "Scores of the best model, by split", ("metric", *names), tuple(rows), "l" + "r" * len(names), note
    )


def _confusion_figures(parts: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    figures = []
    for name, part in parts.items():
        for normalise, kind, caption in (
            (True, "row-normalised", "Each row sums to 1: the diagonal is the recall of each class."),
            (False, "counts", "Image counts: true class by row, predicted class by column."),
        ):
            figure = plot_confusion_matrix(
                np.asarray(part["confusion_matrix"]), normalise, f"Confusion matrix, {name}"
            )
            figures.append(figure_item(figure, f"Confusion matrix, {name}, {kind}", caption))
    return figures


def _markdown(
    name: str,
    data: dict[str, Any],
    config: dict[str, Any],
    parts: dict[str, dict[str, Any]],
    members: int = 0,
) -> str:
    """A short table of the scores to paste into a README."""
    lines = [f"## Run `{name}`", ""]
    if parts:
        lines += [
            "| split | images | accuracy | balanced accuracy | " + " | ".join(CODES) + " |",
            "|:--|--:|--:|--:|" + "--:|" * len(CODES),
        ]
        for part, m in parts.items():
            recalls = " | ".join(percent(m["per_class_recall"].get(c, float("nan"))) for c in CODES)
            scores = f"{percent(m['accuracy'])} | {percent(m['balanced_accuracy'])}"
            lines.append(f"| {part} | {m['n']:,} | {scores} | {recalls} |")
        lines += ["", "Class columns are per-class recall."]
    else:
        lines.append("Not evaluated yet: no metrics.json in the run folder.")
    facts = []
    if isinstance(config.get("model"), str):
        averaged = f" x {members}, probabilities averaged" if members else ""
        facts.append(f"Model: {config['model']}{averaged}.")
    if data:
        source = Path(str(data.get("source", "unknown source"))).name
        images = f", {data['images']:,} images" if "images" in data else ""
        sizes = data.get("split_sizes")
        split = f" ({' / '.join(f'{k} {v:,}' for k, v in sizes.items())})" if sizes else ""
        grouped = {True: ", split by lesion", False: ", split not grouped by lesion"}.get(
            data.get("grouped"), ""
        )
        facts.append(f"Data: {source}{images}{split}{grouped}.")
    if facts:
        lines += ["", " ".join(facts)]
    lines += ["", f"> {NOT_A_DIAGNOSIS}", ""]
    return "\n".join(lines)


def history_figure(history: pd.DataFrame) -> dict[str, str]:
    caption = "Training (solid) and validation (dashed) per epoch; a widening gap is over-fitting."
    return figure_item(plot_history(history), "Training history", caption)


def write_run_report(run_dir: Path) -> Path:
    """Write `report.html` (figures inlined), `summary.md` and `model_card.md` into `run_dir`; returns the
    report's path."""
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    if not any(folder.has(name) for name in REPORTED_FILES):
        raise SkinPamperError(
            f"{run_dir}: not a run folder; expected at least one of {', '.join(REPORTED_FILES)}"
        )
    data = folder.read(DATASET) or {}
    config = folder.read(CONFIG) or {}
    history = folder.history_frame()
    recorded = folder.read(METRICS) or {}
    parts = _metric_parts(folder.file(METRICS), recorded)
    members = folder.members()
    name = run_dir.resolve().name
    sizes = data.get("split_sizes")
    page = render_template(
        "report.html",
        title=f"Run report: {name}",
        disclaimer=NOT_A_DIAGNOSIS,
        ungrouped=data.get("grouped") is False,
        data_tables=data_tables(data) if data else [],
        split_table=split_table(sizes, data.get("split_class_counts")) if sizes else None,
        config_table=config_table(config) if config else None,
        history_figure=None if history is None else history_figure(history),
        members_table=members_table(members) if members else None,
        metrics_table=_metrics_table(parts) if parts else None,
        confusion_figures=_confusion_figures({name: parts[name] for name in PARTS if name in parts}),
        trust=trust_context(
            recorded.get("subgroups"),
            recorded.get("abstention", {}).get("test"),
            abstention_record(folder),
            recorded.get("risk_coverage"),
            tta=False,
            scored="the test split's plain probabilities",
        )
        if recorded
        else None,
    )
    markdown = _markdown(name, data, config, parts, len(members))
    card = model_card(run_dir)
    files = {"report.html": page, "summary.md": markdown, "model_card.md": card}
    write_files(run_dir, {name: text.encode("utf-8") for name, text in files.items()})
    return run_dir / "report.html"
