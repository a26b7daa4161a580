"""`skinpamper ensemble`: average finished runs that share a split into one new run."""

from __future__ import annotations

from pathlib import Path

import click

from skinpamper.cli.common import load_data
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
    from skinpamper.training.ensemble import make_ensemble, open_members

    first = open_members(runs)[0]  # refuses mismatched runs before the data is loaded
    config = first.config()
    path = data or first.data_path()
    if path is None:
        raise click.UsageError(f"{runs[0]} does not record its dataset; give --data")
    dataset = load_data(path, config.image_size, config.data_format, config.fit)
    run_dir = make_ensemble(runs, out, dataset)
    echo_run_summary(Path(run_dir))
