"""train/resume on a tiny synthetic dataset: the run folder, history, interruption and resume."""

from __future__ import annotations

import csv
import io
import json
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from skinpamper.data.dataset import Dataset
from skinpamper.data.splits import split_dataset
from skinpamper.errors import ConfigError
from skinpamper.progress import TqdmProgress, time_left
from skinpamper.runfolder import FORMAT_VERSION, RunState
from skinpamper.runfolder.files import HISTORY_COLUMNS, LAST_MODEL
from skinpamper.training.config import TrainConfig
from skinpamper.training.losses import LogitAdjustedCrossEntropy, log_prior
from skinpamper.training.run import Run
from skinpamper.training.train import EpochRecorder, resume, train
from synthetic import tiny_dataset

# Keras's own model.save converts variables with np.array(copy=False), which numpy 2 warns about.
RUN_FILES = {
    "config.json", "split.json", "dataset.json", "environment.json", "history.csv",
    "model.keras", "last.keras", "state.json", "metrics.json", "calibration.json",
    "ood_detector.npz", "dermoscopy_detector.npz", "abstention.json", "run.json",
}  # fmt: skip
CONFIG = TrainConfig(epochs=2, batch_size=8, seed=3)


class _StopAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        raise KeyboardInterrupt


class _StopMidSecondEpoch(keras.callbacks.Callback):
    """Ctrl-C in the middle of epoch 2, after some of its batches have changed the weights."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.epoch == 1 and batch == 1:
            raise KeyboardInterrupt

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return tiny_dataset()


@pytest.fixture(scope="module")
def progress_text() -> io.StringIO:
    return io.StringIO()


@pytest.fixture(scope="module")
def finished_run(
    dataset: Dataset, tmp_path_factory: pytest.TempPathFactory, progress_text: io.StringIO
) -> Run:
    split = split_dataset(dataset, CONFIG.val_fraction, CONFIG.test_fraction, CONFIG.seed)
    callbacks = [TqdmProgress(file=progress_text)]
    return Run.open(train(dataset, split, CONFIG, tmp_path_factory.mktemp("run") / "full", callbacks))


def test_run_folder_holds_every_file(finished_run: Run, dataset: Dataset) -> None:
    assert {p.name for p in finished_run.path.iterdir()} == RUN_FILES
    assert json.loads(finished_run.file("run.json").read_text())["format_version"] == FORMAT_VERSION
    assert finished_run.config() == CONFIG
    metrics = finished_run.metrics()
    assert set(metrics) == {"val", "test", "abstention", "subgroups", "risk_coverage"}
    assert metrics["test"]["n"] == len(finished_run.split(dataset).test)
    info = json.loads(finished_run.file("dataset.json").read_text())
    assert info["images"] == 70 and info["class_counts"]["mel"] == 10 and info["image_size"] == 28
    assert sum(info["split_sizes"].values()) == 70 and info["grouped"] is True
    environment = finished_run.file("environment.json").read_text()
    assert socket.gethostname() not in environment and '"keras_backend"' in environment


def test_training_fits_the_ood_detector_and_thresholds_on_the_right_splits(
    finished_run: Run, dataset: Dataset
) -> None:
    """The detector has a centre per training class; the OOD threshold keeps 95% of validation images;
    the confidence thresholds are recorded with what they gave on validation."""
    detector, rules = finished_run.abstention()
    split = finished_run.split(dataset)
    assert detector.means.shape[0] == len(np.unique(dataset.labels[split.train]))
    assert rules.ood_keep == CONFIG.ood_keep and rules.target_balanced_accuracy == CONFIG.abstention_target
    assert set(rules.confidence) == {"plain", "tta"}
    assert all(0.5 <= choice.coverage <= 1 for choice in rules.confidence.values())
    summary = finished_run.metrics()["abstention"]
    assert summary["val"]["n"] == len(split.val) and summary["test"]["n"] == len(split.test)
    # at least 95% of validation images are at or under the threshold
    assert summary["val"]["shares"]["out_of_distribution"] <= 1 - CONFIG.ood_keep + 1e-9
    assert sum(summary["test"]["shares"].values()) == pytest.approx(1.0)


def test_history_has_a_row_per_epoch(finished_run: Run) -> None:
    with finished_run.file("history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert tuple(rows[0]) == HISTORY_COLUMNS
    assert all(0 <= float(r["val_balanced_accuracy"]) <= 1 and float(r["lr"]) > 0 for r in rows)
    # Mean recall of the training split too (un-augmented), so the curves show train vs validation.
    assert all(0 <= float(r["balanced_accuracy"]) <= 1 for r in rows)
    assert float(rows[0]["lr"]) == pytest.approx(CONFIG.learning_rate, rel=0.2)  # end of the warm-up
    state = finished_run.state()
    assert state.epoch == 2 and state.finished and 1 <= state.best_epoch <= 2
    assert state.best_score == max(float(r["val_balanced_accuracy"]) for r in rows)


@pytest.mark.slow
@pytest.mark.parametrize("stopper", [_StopAfterFirstEpoch, _StopMidSecondEpoch])
def test_interrupted_run_resumes_to_the_same_result(
    finished_run: Run, dataset: Dataset, tmp_path, stopper: type[keras.callbacks.Callback]
) -> None:
    split = split_dataset(dataset, CONFIG.val_fraction, CONFIG.test_fraction, CONFIG.seed)
    with pytest.raises(KeyboardInterrupt):
        train(dataset, split, CONFIG, tmp_path / "run", callbacks=[stopper()])
    run = Run.open(tmp_path / "run")
    assert run.state().epoch == 1 and not run.file("metrics.json").exists()
    resume(run.path, dataset)
    assert [row["epoch"] for row in run.history()] == [1, 2]
    assert run.file("split.json").read_text() == finished_run.file("split.json").read_text()
    # The same seed gives the same split, batches, augmentation and dropout masks, so the same model.
    for part in ("val", "test"):
        expected, got = finished_run.metrics()[part], run.metrics()[part]
        assert got["balanced_accuracy"] == pytest.approx(expected["balanced_accuracy"], abs=0.05)
    np.testing.assert_allclose(
        [r["loss"] for r in run.history()], [r["loss"] for r in finished_run.history()], rtol=1e-3
    )


@pytest.mark.slow
def test_a_logit_adjusted_run_resumes_with_the_training_prior(dataset: Dataset, tmp_path) -> None:
    config = CONFIG.replace(imbalance="logit_adjust")
    split = split_dataset(dataset, config.val_fraction, config.test_fraction, config.seed)
    with pytest.raises(KeyboardInterrupt):
        train(dataset, split, config, tmp_path / "run", callbacks=[_StopAfterFirstEpoch()])
    run = Run.open(resume(tmp_path / "run", dataset))
    assert run.state().finished and [row["epoch"] for row in run.history()] == [1, 2]
    loss = run.load_model(LAST_MODEL).loss
    assert isinstance(loss, LogitAdjustedCrossEntropy)
    np.testing.assert_allclose(loss.log_prior, log_prior(dataset.labels[split.train]))
    # A fresh process (predict, evaluate, serve) that never imported the losses can load it too.
    script = f"from skinpamper.training.run import Run; print(Run.open({str(run.path)!r}).load_model().name)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_run_saved_before_colour_constancy_existed_reads_as_without_it(finished_run: Run, tmp_path) -> None:
    old = json.loads(finished_run.file("config.json").read_text())
    del old["colour_constancy"]
    (tmp_path / "config.json").write_text(json.dumps(old))
    assert not Run.open(tmp_path).config().colour_constancy


@pytest.mark.slow
def test_resuming_a_finished_run_only_rescores_it(finished_run: Run, dataset: Dataset) -> None:
    history = finished_run.file("history.csv").read_text()
    resume(finished_run.path, dataset)
    assert finished_run.file("history.csv").read_text() == history


def test_refuses_to_overwrite_a_run(finished_run: Run, dataset: Dataset) -> None:
    split = finished_run.split(dataset)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(dataset, split, CONFIG, finished_run.path)


def test_image_size_must_match_the_config(dataset: Dataset, tmp_path) -> None:
    split = split_dataset(dataset, seed=0)
    with pytest.raises(ConfigError, match="image_size=32"):
        train(dataset, split, CONFIG.replace(image_size=32), tmp_path / "run")


def test_width_the_model_lacks_is_refused_before_the_run_folder(dataset: Dataset, tmp_path) -> None:
    split = split_dataset(dataset, seed=0)
    with pytest.raises(ConfigError, match="no width option"):
        train(dataset, split, CONFIG.replace(model="seed", width=1.5), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_progress_callback_sees_the_validation_figures(finished_run: Run, progress_text: io.StringIO) -> None:
    lines = [line for line in progress_text.getvalue().splitlines() if "val_bal_acc" in line]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "lr " in lines[0] and "batch/s" in progress_text.getvalue()
    assert "of training left" in lines[0] and "left" not in lines[-1]  # the last epoch has none left


def test_early_stop_after_patience_epochs_without_improvement(dataset: Dataset, tmp_path) -> None:
    run = Run.create(tmp_path / "run")
    recorder = EpochRecorder(
        run, dataset, split_dataset(dataset), CONFIG.replace(epochs=9, patience=2), RunState()
    )
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    recorder.set_model(model)
    stopped = []
    for epoch, score in enumerate([0.3, 0.5, 0.5, 0.4], start=1):
        recorder._checkpoint(epoch, score)
        stopped.append(getattr(model, "stop_training", False))
    assert stopped == [False, False, False, True]
    assert run.state() == RunState(epoch=4, best_epoch=2, best_score=0.5, stopped_early=True)


def test_no_early_stop_in_the_first_half_of_the_schedule(dataset: Dataset, tmp_path) -> None:
    run = Run.create(tmp_path / "run")
    config = CONFIG.replace(epochs=10, patience=2)
    recorder = EpochRecorder(run, dataset, split_dataset(dataset), config, RunState())
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    recorder.set_model(model)
    stopped = []
    for epoch, score in enumerate([0.5, 0.3, 0.3, 0.3, 0.3], start=1):
        recorder._checkpoint(epoch, score)
        stopped.append(getattr(model, "stop_training", False))
    assert stopped == [False, False, False, False, True]  # epochs 3-4 are stale but early


def test_history_plot_shows_train_and_validation_mean_recall(finished_run: Run) -> None:
    import pandas as pd

    from skinpamper.reports.plots import plot_history

    fig = plot_history(pd.read_csv(finished_run.file("history.csv")))
    panel = next(ax for ax in fig.axes if ax.get_title() == "Balanced accuracy (mean recall)")
    assert [line.get_label() for line in panel.lines] == ["train", "validation"]


@pytest.mark.slow
def test_metadata_model_is_fitted_on_the_training_split_and_scored(dataset: Dataset, tmp_path) -> None:
    """Age, sex and site that tell the classes apart: fitted on training images only, and the fused
    scores sit beside the image-only ones."""
    sites = np.array(["face", "back", "trunk", "hand", "foot", "scalp", "neck"])
    split = split_dataset(dataset, CONFIG.val_fraction, CONFIG.test_fraction, CONFIG.seed)
    meta = dataset.meta.copy()
    meta["localization"] = sites[dataset.labels]
    meta.loc[split.test[0], "localization"] = "acral"  # a site the training split never shows
    meta["age"] = 30.0 + 5 * dataset.labels
    meta["sex"] = np.where(np.arange(len(meta)) % 2, "male", "female")
    with_meta = Dataset(images=dataset.images, labels=dataset.labels, meta=meta, source="tiny+meta")
    run = Run.open(train(with_meta, split, CONFIG.replace(epochs=1), tmp_path / "run"))
    model = run.metadata_model()
    assert model is not None and model.n_train == len(split.train)
    assert model.sites == tuple(sorted(sites)) and model.sexes == ("female", "male")
    metrics = run.metrics()
    for part in ("val", "test"):
        fused = metrics["with_metadata"][part]
        assert fused["n"] == metrics[part]["n"]
        assert fused["balanced_accuracy"] > max(metrics[part]["balanced_accuracy"], 0.9)

    # A run made before metadata models existed gets one when resumed, and is re-scored with it.
    run.file("metadata_model.json").unlink()
    run.write_metrics({part: metrics[part] for part in ("val", "test")})
    resume(run.path, with_meta)
    assert run.metadata_model() == model and run.metrics()["with_metadata"] == metrics["with_metadata"]


def test_data_without_metadata_gives_a_run_without_a_metadata_model(finished_run: Run) -> None:
    assert finished_run.metadata_model() is None
    assert "with_metadata" not in finished_run.metrics()


def test_time_left_is_as_precise_as_an_estimate_deserves() -> None:
    assert [time_left(s) for s in (44.6, 420, 3900)] == ["45 s", "7 min", "1 h 05 min"]
