"""`skinpamper ensemble`: average finished runs that share a split into one new run."""

from __future__ import annotations

import click

from skinpamper.cli.common import decoding_bar
from skinpamper.cli.train_commands import echo_run_summary


@click.command("ensemble", short_help="Average finished runs that share a split.")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New run folder.")
@click.option("--data", type=click.Path(), help="Dataset path [default: the first run's].")
def ensemble_command(runs: tuple[str, ...], out: str, data: str | None) -> None:
    """Average the probabilities of RUNS (two or more, one split) into a new run folder.

    \b
    Members share a split when trained with one --split-seed and different --seed values:
      skinpamper train --model compact_cnn --seed 1 --split-seed 0 --out runs/m1
      skinpamper train --model compact_cnn --seed 2 --split-seed 0 --out runs/m2
      skinpamper ensemble runs/m1 runs/m2 --out runs/ensemble
    """
    from skinpamper.workflows.training import ensemble_run

    trained = ensemble_run(runs, out, data, bar=decoding_bar)
    echo_run_summary(trained.folder, trained.report)
