"""`train_run`, `resume_run`, `ensemble_run`: a run folder made, continued or averaged, with its report.

`skinpamper train`, `skinpamper ensemble` and `skinpamper.train` all come here, so a run has the same
default folder, the same member count, the same lock and the same split whichever door made it.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skinpamper.data.dataset import Dataset
from skinpamper.errors import ConfigError
from skinpamper.training.config import TrainConfig, default_members, resolve_config
from skinpamper.workflows.common import DecodingBar, Trained, hold_output, load_data, load_run_data, no_bar

if TYPE_CHECKING:
    import keras

    from skinpamper.data.splits import Split
    from skinpamper.training.distributed import Cluster


def ignore(note: str) -> None:
    """Drop a note: for callers that show none."""


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """A new run's settings, folder and member count, resolved once for every front end."""

    config: TrainConfig
    folder: Path
    members: int

    def reading(self, data_path: str) -> RunPlan:
        """The same plan with its data at `data_path` (recorded in the run's config)."""
        return dataclasses.replace(self, config=self.config.replace(data_path=data_path))


def default_run_folder(model: str) -> Path:
    """runs/MODEL-TIME: where a run goes unless told, so that two runs never share a folder by chance."""
    return Path(f"runs/{model}-{time.strftime('%Y%m%d-%H%M%S')}")


def plan_run(
    config_file: str | Path | None = None,
    out: str | Path | None = None,
    members: int | None = None,
    **settings: Any,
) -> RunPlan:
    """Resolve the settings (defaults, the model's own, the TOML file, then `settings`), the folder
    (`out`, else `default_run_folder`) and the members (default: `default_members` of the model)."""
    config = resolve_config(config_file, **settings)
    count = default_members(config.model) if members is None else members
    if count < 1:
        raise ConfigError(f"members must be at least 1, got {count}")
    folder = Path(out).expanduser() if out else default_run_folder(config.model)
    return RunPlan(config, folder, count)


def train_run(
    plan: RunPlan,
    data: Dataset | str | Path | None = None,
    *,
    split: Split | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    cluster: Cluster | None = None,
    bar: DecodingBar = no_bar,
    note: Callable[[str], None] = ignore,
) -> Trained:
    """Train `plan` on `data` (a path, a loaded Dataset, or None for the plan's data path) into its
    folder, then write the run's report.

    The folder is locked before anything is read, and the model's image size is checked before the
    data is decoded, so a mistake costs nothing. `split` defaults to the lesion-grouped split of the
    settings' split seed (`note` hears what drawing it had to settle for). With `members` above one,
    that many runs on the split are averaged. On a `cluster`, process 0 writes the run and the others
    train in step in a scratch folder; `callbacks` run on the writing process only (one progress
    bar, not one a process).
    """
    from skinpamper.models import check_image_size
    from skinpamper.training import distributed

    config = plan.config
    writer = cluster is None or cluster.process_id == 0
    with hold_output(plan.folder if writer else None):
        if cluster is not None:  # before any JAX computation, which would fix the devices of one process
            _start_cluster(cluster, plan.folder, config.batch_size)
        with distributed.single_process():  # a build on this process's CPU, not across processes
            check_image_size(config.model, config.image_size)
        dataset = data if isinstance(data, Dataset) else _read(config, data, bar)
        if split is None:
            split = _draw_split(dataset, config, note)
        shown = callbacks if distributed.is_writer() else ()
        with _workspace(plan.folder) as target:
            _fit(dataset, split, plan, target, shown)
        if not distributed.is_writer():
            return Trained(plan.folder, None)
        with distributed.single_process():  # the report's models are this process's alone
            return _finish(plan.folder)


def resume_run(
    folder: str | Path,
    data: Dataset | str | Path | None = None,
    *,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    bar: DecodingBar = no_bar,
) -> Trained:
    """Continue an interrupted run from its last finished epoch on its own data (or `data`, read in
    the run's form), then write its report; a finished run is re-scored."""
    from skinpamper.training.run import Run
    from skinpamper.training.train import resume

    folder = Path(folder)
    with hold_output(folder):
        dataset = load_run_data(Run.open(folder), data, None, bar)
        resume(folder, dataset, callbacks)
        return _finish(folder)


def ensemble_run(
    runs: Sequence[str | Path],
    out: str | Path,
    data: Dataset | str | Path | None = None,
    bar: DecodingBar = no_bar,
) -> Trained:
    """Average finished runs that share a split into a new run folder `out`, scored on the first
    run's data (or `data`), with its report."""
    from skinpamper.training.ensemble import make_ensemble, open_members

    first = open_members(runs)[0]  # refuses mismatched runs before the data is loaded
    with hold_output(Path(out)):
        dataset = load_run_data(first, data, None, bar)
        return _finish(make_ensemble(runs, out, dataset))


def _read(config: TrainConfig, data: str | Path | None, bar: DecodingBar) -> Dataset:
    source = data if data is not None else config.data_path
    if source is None:
        raise ConfigError("no dataset: give the data to train on")
    return load_data(source, config.image_size, config.data_format, config.fit, bar)


def _draw_split(dataset: Dataset, config: TrainConfig, note: Callable[[str], None]) -> Split:
    from skinpamper.data.splits import split_dataset
    from skinpamper.training.distributed import is_writer

    split = split_dataset(dataset, config.val_fraction, config.test_fraction, config.effective_split_seed)
    if split.note and is_writer():
        note(split.note)
    return split


def _fit(
    dataset: Dataset, split: Split, plan: RunPlan, target: Path, callbacks: Sequence[keras.callbacks.Callback]
) -> None:
    from skinpamper.training.ensemble import train_ensemble
    from skinpamper.training.train import train

    if plan.members > 1:
        train_ensemble(dataset, plan.config, plan.members, target, callbacks, split)
    else:
        train(dataset, split, plan.config, target, callbacks)


def _finish(folder: Path) -> Trained:
    from skinpamper.reports.run_report import write_run_report

    return Trained(folder, write_run_report(folder))


def _start_cluster(cluster: Cluster, folder: Path, batch_size: int) -> None:
    from skinpamper.training import distributed

    # A rerun into a started folder would have process 0 resume while the others start afresh (their
    # records are private), and their collectives would no longer match.
    if cluster.process_id == 0 and folder.exists() and any(folder.iterdir()):
        raise ConfigError(
            f"{folder}: not empty; --distributed starts new runs only (continue an interrupted one "
            "on one machine: skinpamper train --resume, or this command without --distributed)"
        )
    distributed.start(cluster, batch_size)


@contextmanager
def _workspace(folder: Path) -> Iterator[Path]:
    """`folder` for the process that writes the run; a private folder, deleted after, for the others.

    Processes other than 0 train in step with it and keep their own epoch records (for early stopping
    and checkpoints), so they need somewhere to put them that is not the shared run folder.
    """
    from skinpamper.training.distributed import is_writer

    if is_writer():
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="skinpamper-process-") as scratch:
        yield Path(scratch) / "run"
