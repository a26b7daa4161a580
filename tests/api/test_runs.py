"""`skinpamper.train` makes the run folder `skinpamper train` makes, and a TrainedRun draws its figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

import skinpamper
from helpers import write_ham_folder
from skinpamper.classes import CODES
from skinpamper.errors import ConfigError
from synthetic import tiny_dataset


@pytest.fixture(scope="module")
def notebook_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[skinpamper.TrainedRun, object]:
    """One member, one epoch, from the JPEGs of a HAM10000-like folder at 28 px."""
    root = tmp_path_factory.mktemp("api")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKINPAMPER_HOME", str(root / "home"))
        dataset = skinpamper.load_dataset(write_ham_folder(root / "ham"), image_size=28, format="jpeg")
        run = skinpamper.train(
            dataset, model="compact_cnn", epochs=1, batch_size=8, members=1, out=root / "run", progress=False
        )
    return run, dataset


@pytest.mark.slow
def test_train_writes_a_run_with_its_report_and_model_card(notebook_run) -> None:
    run, dataset = notebook_run
    assert isinstance(run, skinpamper.TrainedRun)
    for name in ("model.keras", "metrics.json", "history.csv", "report.html", "summary.md", "model_card.md"):
        assert (run.path / name).is_file(), name
    assert run.report == run.path / "report.html" and run.model_card.read_text().startswith("#")
    # The image size comes from the dataset, and the data path lets `skinpamper train --resume` reload it.
    assert (run.config["image_size"], run.config["data_path"]) == (28, str(Path(dataset.source).resolve()))
    assert run.config["epochs"] == 1 and list(run.history["epoch"]) == [1]
    assert "test balanced accuracy" in repr(run)


@pytest.mark.slow
def test_trained_run_figures_show_its_own_figures(notebook_run) -> None:
    run, _ = notebook_run
    test = run.metrics["test"]
    (ax,) = run.plot_per_class_recall(("test",)).axes
    assert [p.get_height() for p in ax.patches] == pytest.approx([test["per_class_recall"][c] for c in CODES])
    matrix_ax = run.plot_confusion_matrix("test", normalise=False).axes[0]
    counts = [int(t.get_text()) for t in matrix_ax.texts]
    assert counts == np.asarray(test["confusion_matrix"]).ravel().tolist()
    history = run.plot_history()
    assert isinstance(history, Figure)
    panels = Figure().subplots(1, len(history.axes))
    assert run.plot_history(axes=panels) == list(panels)
    assert [ax.get_title() for ax in panels] == [ax.get_title() for ax in history.axes]
    left, right = Figure().subplots(1, 2)
    assert run.plot_confusion_matrix("val", ax=left) is left and left.get_title().startswith(
        "Confusion matrix, val"
    )
    assert run.plot_per_class_recall(ax=right) is right and len(right.patches) == 2 * len(CODES)
    with pytest.raises(ConfigError, match="choose one of val, test"):
        run.plot_confusion_matrix("train")


def test_load_run_reads_a_cli_run_and_refuses_other_folders(trained_run: Path, tmp_path: Path) -> None:
    run = skinpamper.load_run(trained_run)
    assert run.metrics["test"]["n"] == sum(map(sum, run.metrics["test"]["confusion_matrix"]))
    with pytest.raises(ConfigError, match="not a Skin Pamper run folder"):
        skinpamper.load_run(tmp_path)


def test_members_must_be_at_least_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="members must be at least 1"):
        skinpamper.train(tiny_dataset(), members=0, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_an_ensemble_trains_on_the_split_given(tmp_path: Path) -> None:
    dataset = tiny_dataset()
    parts = skinpamper.split(dataset, seed=7)
    run = skinpamper.train(
        dataset,
        parts,
        model="compact_cnn",
        epochs=1,
        batch_size=8,
        members=2,
        out=tmp_path / "ens",
        progress=False,
    )
    given = parts.to_ids(dataset)
    for folder in (run.path, run.path / "member-1", run.path / "member-2"):
        saved = json.loads((folder / "split.json").read_text())
        assert {name: saved[name] for name in given} == given
    assert (run.path / "report.html").is_file() and len(
        json.loads((run.path / "members.json").read_text())["members"]
    ) == 2
