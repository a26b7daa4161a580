"""`evaluate_run`: score a run on its own split or on another labelled set, and write what it found.

`skinpamper evaluate` and `skinpamper.evaluate` both come here, so one rule decides whether a set is
the run's own data (`holds_the_runs_split`), from the images it holds rather than from how it was
given: the run's own data is scored on one part of its split, another set on every image, and a set
holding some of the images the model learnt from is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from skinpamper.data.dataset import Dataset
from skinpamper.errors import ConfigError
from skinpamper.workflows.common import DecodingBar, hold_output, load_run_data, no_bar

if TYPE_CHECKING:
    from skinpamper.evaluation.evaluate import Evaluation

PARTS = ("train", "val", "test")


class Evaluated(NamedTuple):
    """An evaluation and the folder its files were written to (None when none was asked for)."""

    evaluation: Evaluation
    folder: Path | None


def holds_the_runs_split(split_ids: Mapping[str, Sequence[str]], dataset: Dataset) -> bool:
    """True when `dataset` is the run's own data (it holds every image of the run's split), False when
    it is another set; refused when it holds some of the run's training images but not the split,
    since its figures would count images the model learnt from."""
    parts = {name: {str(i) for i in split_ids.get(name, ())} for name in PARTS}
    ids = set(dataset.meta["image_id"].astype(str))
    if set().union(*parts.values()) <= ids:
        return True
    seen = ids & parts["train"]
    if seen:
        raise ConfigError(
            f"{dataset.source}: holds {len(seen):,} of the run's training images but not its whole split; "
            "give the run's own data (its test split is scored) or a set of other images"
        )
    return False


def evaluate_run(
    run_dir: str | Path,
    data: Dataset | str | Path | None = None,
    *,
    part: str = "test",
    fmt: str = "auto",
    tta: bool = True,
    bootstrap: int = 1000,
    out: str | Path | None = None,
    explain: bool = True,
    bar: DecodingBar = no_bar,
) -> Evaluated:
    """Score the run on `part` of its own data, or on every image of another labelled set `data`
    (a path read in `fmt`, or a loaded Dataset); with `out`, write the evaluation's files there.

    `out` is refused if it holds a run (the evaluation's metrics.json would replace the run's) and
    locked for the whole job, both before any image is read.
    """
    from skinpamper.evaluation.evaluate import EVALUATION_FILES, evaluate, write_evaluation
    from skinpamper.reports.evaluation_report import write_evaluation_report
    from skinpamper.runfolder import refuse_run_folder
    from skinpamper.training.run import Run

    folder = None if out is None else Path(out).expanduser()
    if folder is not None:
        refuse_run_folder(folder, EVALUATION_FILES)
    run = Run.open(Path(run_dir).expanduser())
    with hold_output(folder):
        dataset = load_run_data(run, data, fmt, bar)
        own = holds_the_runs_split(run.split_ids(), dataset)
        evaluation = evaluate(
            run.path, dataset, part, external=not own, tta=tta, n_boot=bootstrap, explain=explain
        )
        if folder is None:
            return Evaluated(evaluation, None)
        written = write_evaluation(evaluation, folder)
        write_evaluation_report(evaluation, written)
        return Evaluated(evaluation, written)
