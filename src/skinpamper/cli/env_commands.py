"""`skinpamper env`: the backend, versions, devices, precision and cached weights training will use."""

from __future__ import annotations

import json

import click


@click.command("env", short_help="Show the backend, devices and precision training uses.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def env_command(as_json: bool) -> None:
    """Backend, versions, devices, precision, XLA and cached ImageNet weights: run it first when
    training is slow or ignores a GPU.

    Offline and quick: it lists devices and checks files, and downloads nothing.
    Example: skinpamper env --json
    """
    from skinpamper.training.environment_report import environment_report, format_environment_report

    report = environment_report()
    click.echo(json.dumps(report, indent=2) if as_json else format_environment_report(report))
