"""`python -m skinpamper` runs the same CLI as the `skinpamper` console script."""

from skinpamper.cli import run

run()
