"""Training from a notebook: `train` makes a run folder as `skinpamper train` does and returns it as a
`TrainedRun`, whose figures are matplotlib Figures that show inline.

Reading a finished run needs no Keras: the figures come from its files (metrics.json, history.csv), read
through `runfolder.RunFolder`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from skinpamper.data.dataset import Dataset
from skinpamper.data.splits import Split
from skinpamper.errors import ConfigError
from skinpamper.reports.plots import plot_confusion_matrix, plot_history, plot_per_class_recall
from skinpamper.runfolder import RunFolder
from skinpamper.runfolder.files import CONFIG, METRICS

PARTS = ("val", "test")


@dataclass(frozen=True)
class TrainedRun:
    """A run folder, read for a notebook: its figures, its history and where its report is.

    Its files are read when asked for, so a run that is resumed or re-scored shows its new figures.

    Example:
        ```python
        run = skinpamper.load_run("runs/quickstart")  # or what skinpamper.train returned
        run.metrics["test"]["balanced_accuracy"]
        run.history[["epoch", "val_balanced_accuracy"]].tail()
        run.plot_history()
        ```
    """

    path: Path

    @property
    def metrics(self) -> dict[str, Any]:
        """metrics.json: `val` and `test` figures (accuracy, balanced_accuracy, macro_auc,
        per_class_recall, confusion_matrix), `with_metadata`, `abstention` and `subgroups`."""
        metrics = RunFolder(self.path).read(METRICS)
        if metrics is None:
            raise ConfigError(f"{self.path}: no {METRICS} yet; the run has not finished")
        return metrics

    @property
    def history(self) -> pd.DataFrame:
        """One row per finished epoch: losses, accuracies, validation recall per class, seconds."""
        history = RunFolder(self.path).history_frame()
        return pd.DataFrame() if history is None else history

    @property
    def config(self) -> dict[str, Any]:
        """The settings the run was trained with (config.json)."""
        return RunFolder(self.path).read(CONFIG) or {}

    @property
    def report(self) -> Path:
        """report.html: open it in a browser."""
        return self.path / "report.html"

    @property
    def model_card(self) -> Path:
        """model_card.md: what the model is for, how it scores, by subgroup, and its limits."""
        return self.path / "model_card.md"

    @overload
    def plot_history(self, *, axes: None = None) -> Figure: ...
    @overload
    def plot_history(self, *, axes: Sequence[Axes] | np.ndarray) -> list[Axes]: ...
    def plot_history(self, *, axes: Sequence[Axes] | np.ndarray | None = None) -> Figure | list[Axes]:
        """Training and validation curves per epoch (loss, accuracy, balanced accuracy, recall per class).
        On `axes` when given, one per panel (a wrong number is refused with the number needed), which
        are then returned as a list."""
        return plot_history(self.history, axes=axes)

    @overload
    def plot_confusion_matrix(self, part: str = ..., normalise: bool = ..., *, ax: None = None) -> Figure: ...
    @overload
    def plot_confusion_matrix(self, part: str = ..., normalise: bool = ..., *, ax: Axes) -> Axes: ...
    def plot_confusion_matrix(
        self, part: str = "test", normalise: bool = True, *, ax: Axes | None = None
    ) -> Figure | Axes:
        """The confusion matrix of `part` (`val` or `test`); `normalise` puts recall on the diagonal.
        On `ax` when given, which is then returned."""
        scores = self._part(part)
        title = f"Confusion matrix, {part}"
        return plot_confusion_matrix(scores["confusion_matrix"], normalise, title, ax=ax)

    @overload
    def plot_per_class_recall(self, parts: tuple[str, ...] = ..., *, ax: None = None) -> Figure: ...
    @overload
    def plot_per_class_recall(self, parts: tuple[str, ...] = ..., *, ax: Axes) -> Axes: ...
    def plot_per_class_recall(
        self, parts: tuple[str, ...] = PARTS, *, ax: Axes | None = None
    ) -> Figure | Axes:
        """Recall of each class on each of `parts`, side by side; on `ax` when given, then returned."""
        recalls = {part: self._part(part)["per_class_recall"] for part in parts}
        return plot_per_class_recall(recalls, f"Recall per class ({self.path.name})", ax=ax)

    def _part(self, part: str) -> dict[str, Any]:
        metrics = self.metrics
        if part not in PARTS or part not in metrics:
            raise ConfigError(f"{self.path}: no figures for {part!r}; choose one of {', '.join(PARTS)}")
        return metrics[part]

    def __repr__(self) -> str:
        scores = RunFolder(self.path).read(METRICS) or {}
        test = scores.get("test", {}).get("balanced_accuracy")
        shown = "" if test is None else f", test balanced accuracy {test:.3f}"
        return f"TrainedRun({str(self.path)!r}{shown})"


def load_run(path: str | Path) -> TrainedRun:
    """A run folder made by `skinpamper train` or `skinpamper.train`, for its figures in a notebook.

    Example:
        ```python
        run = skinpamper.load_run("runs/quickstart")
        run.plot_confusion_matrix("test")
        ```
    """
    return TrainedRun(RunFolder.open(path).path)


def train(
    dataset: Dataset,
    split: Split | None = None,
    *,
    out: str | Path | None = None,
    members: int | None = None,
    config: str | Path | None = None,
    progress: bool = True,
    **settings: Any,
) -> TrainedRun:
    """Train on `dataset` into a new run folder with its report and model card, as `skinpamper train`.

    `settings` are the training settings by their config names, the CLI's flags with underscores:
    `model`, `epochs`, `batch_size`, `learning_rate`, `imbalance`, `colour_constancy`, `seed`,
    `fit`, `augment={"rotation": 15.0}`, ... (every one, with its default and the reason for it, is in
    `skinpamper/training/config.py`); `config` reads a TOML file of them first. `image_size` defaults
    to the dataset's. `split` defaults to the lesion-grouped split of the settings' `seed`. `members`
    above 1 trains that many runs on the split and averages them (`out/member-K`); its default is
    `skinpamper train`'s (three, one for a pretrained model). The run folder is `out`, else
    `runs/MODEL-TIME`. Keras is imported here.

    Example:
        ```python
        dataset = skinpamper.load_dataset("../shared/data/ham10000")
        run = skinpamper.train(dataset, epochs=3, members=1, out="runs/notebook")
        run.plot_history()
        run.plot_per_class_recall()
        ```
    """
    from skinpamper.progress import TqdmProgress
    from skinpamper.workflows.training import plan_run, train_run

    settings.setdefault("image_size", dataset.image_size[0])
    # Absolute, so that `skinpamper train --resume` and `evaluate` find the data from any folder.
    settings.setdefault("data_path", str(Path(dataset.source).resolve()))
    plan = plan_run(config, out, members, **settings)
    callbacks = [TqdmProgress()] if progress else []
    return TrainedRun(train_run(plan, dataset, split=split, callbacks=callbacks).folder)
