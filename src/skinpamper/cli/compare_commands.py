"""`skinpamper compare`: trained runs side by side."""

from __future__ import annotations

import click


@click.command("compare", short_help="Compare runs side by side in one table.")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Also write comparison.csv, comparison.md and comparison.png into this folder.",
)
def compare_command(runs: tuple[str, ...], out: str | None) -> None:
    """Print one table of runs side by side: test scores, per-class recall, model, size, training time.

    \b
    Examples:
      skinpamper compare runs/seed runs/resnet_small
      skinpamper compare runs/* --out comparisons/today
    """
    from skinpamper.data.summary import format_table
    from skinpamper.evaluation.compare import compare_runs, comparison_table
    from skinpamper.reports.comparison import write_comparison

    frame = compare_runs(runs)
    click.echo(format_table(comparison_table(frame)))
    if out:
        for path in write_comparison(frame, out):
            click.echo(f"wrote {path}")
