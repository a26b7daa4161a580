"""The `skinpamper` command: one sub-command per job, each a thin layer over one library call.

Library errors (SkinPamperError) become one clean line on stderr and exit status 1; Ctrl-C exits 130.
Each job's commands live in their own module and are attached here.
"""

from __future__ import annotations

import click

from skinpamper import __version__
from skinpamper.cli.common import Group
from skinpamper.cli.compare_commands import compare_command
from skinpamper.cli.data_commands import data, explore, models
from skinpamper.cli.ensemble_commands import ensemble_command
from skinpamper.cli.env_commands import env_command
from skinpamper.cli.evaluate_commands import evaluate_command
from skinpamper.cli.predict_commands import export_command, predict_command
from skinpamper.cli.quiet import quiet_start_up
from skinpamper.cli.serve_commands import serve_command
from skinpamper.cli.train_commands import train_command


@click.group(cls=Group)
@click.version_option(__version__, prog_name="skinpamper")
def main() -> None:
    """Skin Pamper: skin-lesion classifiers on HAM10000. A research tool, not a medical device."""


for command in (
    data,
    explore,
    models,
    train_command,
    ensemble_command,
    evaluate_command,
    compare_command,
    predict_command,
    export_command,
    serve_command,
    env_command,
):
    main.add_command(command)


def run() -> None:
    """Entry point that keeps TensorFlow's start-up chatter off the user's terminal."""
    quiet_start_up()
    main()
