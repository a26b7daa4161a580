"""`skinpamper.evaluate` scores as `skinpamper evaluate` does and returns its figures as Figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

import skinpamper
from skinpamper.classes import CODES
from skinpamper.errors import ConfigError


@pytest.fixture(scope="module")
def result(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> skinpamper.EvaluationResult:
    out = tmp_path_factory.mktemp("evaluation") / "eval"
    return skinpamper.evaluate(skinpamper.load_run(trained_run), bootstrap=20, out=out, progress=False)


def test_evaluate_scores_the_runs_own_test_split_and_writes_the_report(result, trained_run: Path) -> None:
    split = skinpamper.load_run(trained_run).metrics["test"]
    assert result.evaluation.part == "test" and result.metrics["n"] == split["n"]
    assert result.metrics["balanced_accuracy"] == pytest.approx(split["balanced_accuracy"])
    assert result.metrics_tta is not None and result.metrics["ci95"]["balanced_accuracy"] is not None
    for name in ("metrics.json", "predictions.csv", "report.html", "summary.md", "model_card.md"):
        assert (result.folder / name).is_file(), name
    assert result.report == result.folder / "report.html"


def test_figures_come_from_the_evaluation(result) -> None:
    (ax,) = result.plot_per_class_recall().axes
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["plain", "8-view TTA"]
    plain = [result.metrics["per_class"][c]["sensitivity"] for c in CODES]
    heights = np.array([p.get_height() for p in ax.patches[: len(CODES)]], dtype=float)
    np.testing.assert_allclose(heights, np.array(plain, dtype=float))
    for tta, metrics in ((True, result.metrics_tta), (False, result.metrics)):
        matrix = result.plot_confusion_matrix(normalise=False, tta=tta).axes[0]
        assert [int(t.get_text()) for t in matrix.texts] == np.ravel(metrics["confusion_matrix"]).tolist()
    gradcam = result.plot_gradcam()
    assert isinstance(gradcam, Figure)
    cells = Figure().subplots(len(CODES), 4)
    assert result.plot_gradcam(axes=cells) == list(cells.flat)
    assert [ax.get_title() for ax in cells.flat] == [ax.get_title() for ax in gradcam.axes]
    left, right = Figure().subplots(1, 2)
    assert result.plot_confusion_matrix(ax=left) is left and "8-view TTA" in left.get_title()
    assert result.plot_per_class_recall(ax=right) is right and right.get_legend() is not None


def test_the_dataset_trained_on_is_scored_on_its_test_split(
    trained_run: Path, trained_data: Path, result
) -> None:
    dataset = skinpamper.load_dataset(trained_data, image_size=28, progress=False)
    again = skinpamper.evaluate(trained_run, dataset, tta=False, bootstrap=0, explain=False)
    assert again.evaluation.part == "test" and again.evaluation.image_ids == result.evaluation.image_ids
    trained_on = json.loads((trained_run / "split.json").read_text())["train"][:5]
    train_only = dataset.subset(np.flatnonzero(dataset.meta["image_id"].isin(trained_on)))
    with pytest.raises(ConfigError, match="of the run's training images but not its whole split"):
        skinpamper.evaluate(trained_run, train_only, bootstrap=0)


def test_evaluate_scores_every_image_of_another_set(trained_run: Path, labelled_folder: Path) -> None:
    external = skinpamper.evaluate(trained_run, labelled_folder, tta=False, bootstrap=0, explain=False)
    assert external.evaluation.part == "all" and external.metrics["n"] == len(CODES)
    assert external.folder is None and external.report is None and external.metrics_tta is None
    with pytest.raises(ValueError, match="explain=False"):
        external.plot_gradcam()
