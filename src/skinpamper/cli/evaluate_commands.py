"""`skinpamper evaluate`: score a run on its own split or on any labelled set, and report it."""

from __future__ import annotations

import click

from skinpamper.cli.common import decoding_bar
from skinpamper.data.load import FORMATS
from skinpamper.evaluation.outputs import OUTPUTS, outputs_text


@click.command("evaluate", short_help="Score a run on its test split or any labelled set.")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option(
    "--data",
    type=click.Path(),
    help="Labelled set to score: the run's own data (it holds the run's split) is scored on --split, "
    "another set on every image; one holding some of the run's training images is refused "
    "[default: the run's own].",
)
@click.option(
    "--split",
    "part",
    type=click.Choice(("test", "val", "train")),
    default="test",
    show_default=True,
    help="Part of the run's own split to score (another set is scored whole).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="Form of --data (the run's own is read in the form it recorded).",
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
    help=f"Folder for {outputs_text()} (not a run folder).",
)
def evaluate_command(
    run_dir: str, data: str | None, part: str, fmt: str, tta: bool, bootstrap: int, out: str
) -> None:
    """Score a trained run on its test split or on any labelled set (e.g. an external test set).

    Writes the figures (metrics.json), one row per image (predictions.csv), per status the share
    of images, balanced accuracy and melanoma sensitivity (status_table.csv: how much of a clinic's
    images the model answers, and how well), a self-contained HTML report with Grad-CAM and
    calibration (report.html), a Markdown summary (summary.md) and the run's model card with these
    figures (model_card.md).

    \b
    Examples:
      skinpamper evaluate runs/seed --out eval/seed
      skinpamper evaluate runs/seed --data ~/external/ --out eval/external
    """
    from skinpamper import NOT_A_DIAGNOSIS
    from skinpamper.workflows.evaluation import evaluate_run

    evaluation, folder = evaluate_run(
        run_dir, data, part=part, fmt=fmt, tta=tta, bootstrap=bootstrap, out=out, bar=decoding_bar
    )
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
    for name in OUTPUTS:
        if (folder / name).exists():
            click.echo(f"wrote {folder / name}")
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
