"""Evaluation from a notebook: `evaluate` scores a run as `skinpamper evaluate` does and returns the
figures as matplotlib Figures, with the report written where asked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from skinpamper.api.datasets import decoding_bar
from skinpamper.api.runs import TrainedRun
from skinpamper.classes import CODES
from skinpamper.data.dataset import Dataset
from skinpamper.reports.plots import plot_confusion_matrix, plot_per_class_recall

if TYPE_CHECKING:
    from skinpamper.evaluation.evaluate import Evaluation


@dataclass(frozen=True)
class EvaluationResult:
    """What `evaluate` found: the library's `Evaluation` (probabilities, metrics with 95% intervals,
    subgroups, statuses) and, when `out` was given, the folder holding its report.

    Example:
        ```python
        result = skinpamper.evaluate(run)
        result.metrics["balanced_accuracy"], result.metrics["ci95"]["balanced_accuracy"]
        result.plot_gradcam()
        ```
    """

    evaluation: Evaluation
    folder: Path | None = None

    @property
    def metrics(self) -> dict[str, Any]:
        """Figures of the plain probabilities: accuracy, balanced_accuracy, macro_auc, per_class, ci95, ..."""
        return self.evaluation.metrics

    @property
    def metrics_tta(self) -> dict[str, Any] | None:
        """The same for the mean over the 8 flips and rotations; None when `tta=False`."""
        return self.evaluation.metrics_tta

    @property
    def report(self) -> Path | None:
        """report.html in `folder`, or None when nothing was written."""
        return None if self.folder is None else self.folder / "report.html"

    def _scorings(self) -> dict[str, dict[str, Any]]:
        evaluation = self.evaluation
        scorings = {"plain": evaluation.metrics, "8-view TTA": evaluation.metrics_tta}
        scorings["with age, sex, site"] = evaluation.metrics_metadata
        return {name: metrics for name, metrics in scorings.items() if metrics is not None}

    @overload
    def plot_confusion_matrix(
        self, normalise: bool = ..., tta: bool | None = ..., *, ax: None = None
    ) -> Figure: ...
    @overload
    def plot_confusion_matrix(self, normalise: bool = ..., tta: bool | None = ..., *, ax: Axes) -> Axes: ...
    def plot_confusion_matrix(
        self, normalise: bool = True, tta: bool | None = None, *, ax: Axes | None = None
    ) -> Figure | Axes:
        """The confusion matrix of the TTA probabilities when computed (as the report), else the plain
        ones; `tta=False` asks for the plain ones. On `ax` when given, which is then returned."""
        use_tta = self.metrics_tta is not None if tta is None else tta
        metrics = self.metrics_tta if use_tta and self.metrics_tta is not None else self.metrics
        scoring = "8-view TTA" if metrics is self.metrics_tta else "plain"
        title = f"Confusion matrix, {self.evaluation.part}, {scoring}"
        return plot_confusion_matrix(metrics["confusion_matrix"], normalise, title, ax=ax)

    @overload
    def plot_per_class_recall(self, *, ax: None = None) -> Figure: ...
    @overload
    def plot_per_class_recall(self, *, ax: Axes) -> Axes: ...
    def plot_per_class_recall(self, *, ax: Axes | None = None) -> Figure | Axes:
        """Recall (sensitivity) of each class for every scoring computed: plain, TTA, with metadata;
        on `ax` when given, which is then returned."""
        recalls = {
            name: {code: metrics["per_class"][code]["sensitivity"] for code in CODES}
            for name, metrics in self._scorings().items()
        }
        return plot_per_class_recall(recalls, f"Recall per class, {self.evaluation.part}", ax=ax)

    @overload
    def plot_gradcam(self, *, axes: None = None) -> Figure: ...
    @overload
    def plot_gradcam(self, *, axes: Sequence[Axes] | np.ndarray) -> list[Axes]: ...
    def plot_gradcam(self, *, axes: Sequence[Axes] | np.ndarray | None = None) -> Figure | list[Axes]:
        """Grad-CAM of the most confident correct and wrong image of each class, as in the report. On
        `axes` when given: 28, a row of four per class (e.g. `subplots(7, 4)`), then returned as a list."""
        from skinpamper.reports.evaluation_plots import plot_gradcam_grid

        evaluation = self.evaluation
        rows = evaluation.gradcam_rows
        if rows is None or evaluation.gradcam_maps is None or evaluation.images is None:
            raise ValueError("this evaluation was made with explain=False, so it has no Grad-CAM maps")
        images, maps = evaluation.images[rows], evaluation.gradcam_maps
        return plot_gradcam_grid(images, maps, evaluation.y_true[rows], evaluation.probs[rows], axes=axes)


def evaluate(
    run: TrainedRun | str | Path,
    data: Dataset | str | Path | None = None,
    *,
    split: str = "test",
    format: str = "auto",
    tta: bool = True,
    bootstrap: int = 1000,
    out: str | Path | None = None,
    explain: bool = True,
    progress: bool = True,
) -> EvaluationResult:
    """Score a run on `split` of its own data, or on all of another labelled set, as
    `skinpamper evaluate` does.

    Without `data`, the run's own data is read again (from the cache) at its size and fit. `data` is
    a path (read in `format`) or a loaded `Dataset`: when it holds the run's whole split (the dataset
    the run was trained on), its `split` part is scored; otherwise it is another set (an external
    test set) and every image is scored, unless it holds some of the run's training images, which is
    refused. `tta` adds the mean over the 8 flips and rotations;
    `bootstrap` resamples (by lesion where ids exist) give the 95% intervals; `explain` computes
    Grad-CAM maps. With `out`, metrics.json, predictions.csv, report.html, summary.md and
    model_card.md are written there.

    Example:
        ```python
        result = skinpamper.evaluate(run, out="eval/notebook")
        result.plot_confusion_matrix()
        result.plot_per_class_recall()
        skinpamper.evaluate(run, dataset)  # the dataset trained on: its test split, no reload
        external = skinpamper.evaluate(run, "~/external/", bootstrap=200)  # every image
        ```
    """
    from skinpamper.workflows.evaluation import evaluate_run

    path = run.path if isinstance(run, TrainedRun) else run
    bar = partial(decoding_bar, shown=progress)
    evaluation, folder = evaluate_run(
        path, data, part=split, fmt=format, tta=tta, bootstrap=bootstrap, out=out, explain=explain, bar=bar
    )
    return EvaluationResult(evaluation, folder)
