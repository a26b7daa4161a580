"""Shared pieces of the CLI: progress bars, dataset options, and the error-to-message Group."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import click
from tqdm import tqdm

from skinpamper.data.dataset import Dataset
from skinpamper.data.images import Progress
from skinpamper.data.load import FORMATS
from skinpamper.errors import SkinPamperError
from skinpamper.imaging import FITS

TRAINING_MODULES = {"keras", "tensorflow"}  # what the `train` extra installs


@contextmanager
def progress_bar(description: str, unit: str = "img", scale: bool = False):
    """A tqdm bar on stderr, fed by the library's (done, total) progress callbacks."""
    bar = tqdm(desc=description, unit=unit, unit_scale=scale, leave=False, file=sys.stderr, disable=None)

    def update(done: int, total: int | None) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


def decoding_bar(source: str) -> AbstractContextManager[Progress]:
    """The bar a workflow shows while it decodes `source` (workflows.common.DecodingBar)."""
    return progress_bar(f"decoding {Path(source).name}")


def load_data(path: str, size: int | None, fmt: str, fit: str) -> Dataset:
    """Load a dataset with a progress bar (the bar only appears while images are decoded)."""
    from skinpamper.workflows.common import load_data as load_with_bar

    return load_with_bar(path, size, fmt, fit, decoding_bar)


class FiniteFloat(click.FloatRange):
    """A number option that refuses nan and inf: click's FloatRange lets nan through every bound (a
    comparison with nan is never true), and `--age nan` was then silently ignored."""

    name = "number"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number

    def _describe_range(self) -> str:
        """Nothing for an unbounded number (click would print `[x<=None]`), else click's own."""
        if self.min is None and self.max is None:
            return ""
        return super()._describe_range()


def data_options(command: Callable) -> Callable:
    """--image-size, --format and --fit, shared by every command that reads a dataset."""
    command = click.option(
        "--fit",
        type=click.Choice(FITS),
        default="squash",
        show_default=True,
        help="How a non-square image becomes square.",
    )(command)
    command = click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="auto",
        show_default=True,
        help="Dataset form; auto recognises it.",
    )(command)
    return click.option(
        "--image-size",
        type=click.IntRange(4, 1024),
        default=None,
        help="Square side in pixels [default: the file's own, else 28].",
    )(command)


class Group(click.Group):
    """Turns library and OS errors into one line and a non-zero exit, without a traceback.

    An OSError that escapes a command is the machine's answer (a read-only folder, a full disk, a
    file deleted under it): the user needs the path and the reason, not Python's stack. Writers
    rename their files into place, so such an error leaves nothing half-written.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SkinPamperError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            raise click.ClickException(os_error_line(exc)) from None
        except ModuleNotFoundError as exc:
            # A `pip install 'skinpamper[serve]'` has no training backend; say which extra brings it.
            if (exc.name or "").split(".")[0] not in TRAINING_MODULES:
                raise
            raise click.ClickException(
                f"this command needs {exc.name}, which the serve-only install leaves out: "
                "pip install 'skinpamper[train]'"
            ) from None
        except KeyboardInterrupt:
            click.echo("interrupted; finished work is kept", err=True)
            sys.exit(130)


def os_error_line(error: OSError) -> str:
    """`path: reason`, e.g. `runs/.seed.lock: Permission denied` (both paths for a failed rename)."""
    paths = [str(p) for p in (error.filename, error.filename2) if p is not None]
    reason = error.strerror or str(error)
    return f"{' -> '.join(paths)}: {reason}" if paths else reason


DERMAMNIST_SIZES = {224: "dermamnist_224", 128: "dermamnist_128", 64: "dermamnist_64", 28: "dermamnist"}


def resolve_data(path: str | None, image_size: int = 28) -> str:
    """--data, else $SKINPAMPER_DATA, else DermaMNIST downloaded into $SKINPAMPER_HOME, in the smallest
    of its sizes (28, 64, 128, 224 px) that is not below `image_size` (so it is never upsampled)."""
    if path:
        return path
    if os.environ.get("SKINPAMPER_DATA"):
        return os.environ["SKINPAMPER_DATA"]
    from skinpamper.data.download import fetch_dataset

    name = next((DERMAMNIST_SIZES[s] for s in sorted(DERMAMNIST_SIZES) if s >= image_size), "dermamnist_224")
    click.echo(f"no --data and no $SKINPAMPER_DATA: fetching {name} (its split has no lesion ids)", err=True)
    with progress_bar(f"fetching {name}", unit="B", scale=True) as update:
        return str(fetch_dataset(name, progress=update))
