"""What every workflow needs: a dataset read with the caller's progress display, and one writer per
output folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from skinpamper.data.dataset import Dataset
from skinpamper.data.images import Progress
from skinpamper.data.load import load_dataset
from skinpamper.errors import ConfigError
from skinpamper.locks import OutputLock

if TYPE_CHECKING:
    from skinpamper.training.run import Run

DecodingBar = Callable[[str], AbstractContextManager[Progress | None]]
"""Opens a progress display for decoding one data source: the CLI's bar, the notebook's, or none."""


@contextmanager
def no_bar(source: str) -> Iterator[Progress | None]:
    """No progress display: for callers that show none."""
    yield None


class Trained(NamedTuple):
    """A finished run folder and its report (None on the processes of a cluster that do not write)."""

    folder: Path
    report: Path | None


def load_data(
    source: str | Path, image_size: int | None, fmt: str, fit: str, bar: DecodingBar = no_bar
) -> Dataset:
    """Read a dataset with `bar` showing the decoding (it shows nothing for a cached load)."""
    with bar(str(source)) as update:
        return load_dataset(source, size=image_size, fmt=fmt, fit=fit, progress=update)


def load_run_data(
    run: Run, data: Dataset | str | Path | None, fmt: str | None = None, bar: DecodingBar = no_bar
) -> Dataset:
    """`data` as loaded, or read at the run's image size and fit; without `data`, the run's own.

    `fmt` is the form of a given `data`; the run's own data is read in the form it recorded.
    """
    if isinstance(data, Dataset):
        return data
    config = run.config()
    source = run.data_path() if data is None else data
    if source is None:
        raise ConfigError(f"{run.path}: the run records no dataset; give the data to read")
    form = config.data_format if data is None or fmt is None else fmt
    return load_data(source, config.image_size, form, config.fit, bar)


@contextmanager
def hold_output(folder: Path | None) -> Iterator[None]:
    """One writer per output folder for the whole job: a second job on it refuses at once, naming the
    process that holds it, before either has written anything. None holds nothing."""
    if folder is None:
        yield
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    with OutputLock(folder):
        yield
