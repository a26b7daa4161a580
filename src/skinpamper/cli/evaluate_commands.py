"""`skinpamper evaluate`: score a run on its own split or on any labelled set, and report it."""

from __future__ import annotations

import click

from skinpamper.cli.common import load_data
from skinpamper.data.load import FORMATS


@click.command("evaluate", short_help="Score a run on its test split or any labelled set.")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--data", type=click.Path(), help="Score on this labelled set instead of the run's own split.")
@click.option(
    "--split",
    "part",
    type=click.Choice(("test", "val", "train")),
    default="test",
    show_default=True,
    help="Part of the run's own split to score (ignored with --data).",
)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True, help="Form of --data."
)
@click.option(
    "--tta/--no-tta",
    default=True,
    show_default=True,
    help="Also score the mean over the 8 flips/rotations of each image.",
)
@click.option(
    "--bootstrap",
    type=click.IntRange(0),
    default=1000,
    show_default=True,
    help="Bootstrap resamples for the 95% intervals (by lesion where lesion ids exist).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    required=True,
    help="Folder for metrics.json, predictions.csv, status_table.csv, report.html and summary.md "
    "(not a run folder).",
)
def evaluate_command(
    run_dir: str, data: str | None, part: str, fmt: str, tta: bool, bootstrap: int, out: str
) -> None:
    """Score a trained run on its test split or on any labelled set (e.g. an external test set).

    Writes the figures (metrics.json), one row per image (predictions.csv), per status the share
    of images, balanced accuracy and melanoma sensitivity (status_table.csv: how much of a clinic's
    images the model answers, and how well), a self-contained HTML report with Grad-CAM and
    calibration (report.html) and a Markdown summary (summary.md).

    \b
    Examples:
      skinpamper evaluate runs/seed --out eval/seed
      skinpamper evaluate runs/seed --data ~/external/ --out eval/external
    """
    from skinpamper import NOT_A_DIAGNOSIS
    from skinpamper.evaluation.evaluate import EVALUATION_FILES, STATUS_TABLE, evaluate, write_evaluation
    from skinpamper.reports.evaluation_report import write_evaluation_report
    from skinpamper.training.run import Run, refuse_run_folder

    refuse_run_folder(out, EVALUATION_FILES)  # before the work, not after it
    run = Run.open(run_dir)
    config = run.config()
    source = data or run.data_path()
    dataset = load_data(source, config.image_size, fmt if data else config.data_format, config.fit)
    evaluation = evaluate(run_dir, dataset, part, external=bool(data), tta=tta, n_boot=bootstrap)
    folder = write_evaluation(evaluation, out)
    report, summary = write_evaluation_report(evaluation, folder)
    scorings = (
        ("plain", evaluation.metrics),
        ("8-view TTA", evaluation.metrics_tta),
        ("with age, sex, site", evaluation.metrics_metadata),
    )
    for name, metrics in scorings:
        if metrics is None:
            continue
        ci = metrics["ci95"]["balanced_accuracy"]
        interval = f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else ""
        auc = "n/a" if metrics["macro_auc"] is None else f"{metrics['macro_auc']:.3f}"
        click.echo(
            f"{name}: {metrics['n']} images ({evaluation.part}), balanced accuracy "
            f"{metrics['balanced_accuracy']:.3f}{interval}, accuracy {metrics['accuracy']:.3f}, "
            f"macro AUC {auc}"
        )
    ignored = (evaluation.metrics_metadata or {}).get("unseen_values_ignored", {})
    if any(ignored.values()):
        counts = ", ".join(f"{n} {field}" for field, n in ignored.items() if n)
        click.echo(f"metadata values the run's training split never had, counted as unknown: {counts}")
    if evaluation.abstention is not None:
        click.echo(_status_lines(evaluation.abstention))
    written = [folder / "metrics.json", folder / "predictions.csv", report, summary]
    written[2:2] = [folder / STATUS_TABLE] if evaluation.abstention is not None else []
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(NOT_A_DIAGNOSIS)


def _status_lines(summary: dict) -> str:
    """One line per status: its share, balanced accuracy and melanoma sensitivity."""

    def figure(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = []
    for status, row in summary["by_status"].items():
        lines.append(
            f"  {status}: {100 * row['share']:.1f}% ({row['n']:,} images), balanced accuracy "
            f"{figure(row['balanced_accuracy'])}, melanoma sensitivity {figure(row['mel_sensitivity'])} "
            f"({row['melanomas']} melanomas)"
        )
    rule = summary.get("melanoma_rule_out")
    if rule is not None:
        lines.append(
            f"  melanoma rule-out cut p(mel) >= {rule['threshold']:.3f}: sensitivity "
            f"{figure(rule['sensitivity'])}, specificity {figure(rule['specificity'])} on these images"
        )
    return "by status:\n" + "\n".join(lines)
