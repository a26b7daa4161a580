"""Ensembles: members sharing a split become one run folder that scores, predicts, explains and exports."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from helpers import write_ham_folder
from service_helpers import encode, photo
from skinpamper.cli import main
from skinpamper.data.load import load_dataset
from skinpamper.errors import ConfigError
from skinpamper.evaluation.explain import gradcam
from skinpamper.runfolder import FORMAT_VERSION
from skinpamper.serving.predict import Predictor
from skinpamper.training.config import TrainConfig
from skinpamper.training.ensemble import make_ensemble, train_ensemble
from skinpamper.training.run import Run
from synthetic import tiny_dataset

pytestmark = pytest.mark.slow  # three CLI trainings, then ensembles of them

MEMBER = (
    "--model",
    "compact_cnn",
    "--image-size",
    "28",
    "--epochs",
    "1",
    "--batch-size",
    "8",
    "--model",
    "compact_cnn",
    "--members",
    "1",
)


def _train(folder: Path, out: Path, seed: int, split_seed: int) -> Path:
    args = ["train", "--data", folder, *MEMBER, "--seed", seed, "--split-seed", split_seed, "--out", out]
    result = CliRunner().invoke(main, list(map(str, args)), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two members on split 0 (seeds 1 and 2), and one run on another split."""
    root = tmp_path_factory.mktemp("ensemble")
    folder = write_ham_folder(root / "ham")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKINPAMPER_HOME", str(root / "home"))
        return {
            "data": folder,
            "a": _train(folder, root / "a", seed=1, split_seed=0),
            "b": _train(folder, root / "b", seed=2, split_seed=0),
            "other": _train(folder, root / "other", seed=3, split_seed=3),
        }


@pytest.fixture(scope="module")
def ensemble(members: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("made") / "ensemble"
    result = CliRunner().invoke(
        main, ["ensemble", str(members["a"]), str(members["b"]), "--out", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "balanced accuracy" in result.output and "not a diagnosis" in result.output
    return out


def test_report_lists_the_members(ensemble: Path) -> None:
    page = (ensemble / "report.html").read_text()
    assert "Ensemble members" in page
    assert '<td class="l">a</td>' in page and '<td class="l">b</td>' in page
    assert "compact_cnn x 2, probabilities averaged" in (ensemble / "summary.md").read_text()


def test_split_seed_shares_the_split_and_seed_changes_the_weights(members: dict[str, Path]) -> None:
    a, b, other = Run.open(members["a"]), Run.open(members["b"]), Run.open(members["other"])
    assert a.file("split.json").read_text() == b.file("split.json").read_text()
    assert a.file("split.json").read_text() != other.file("split.json").read_text()
    assert (a.config().seed, a.config().split_seed, a.config().effective_split_seed) == (1, 0, 0)
    weights_a, weights_b = a.load_model().get_weights(), b.load_model().get_weights()
    assert not np.array_equal(weights_a[0], weights_b[0])


def test_ensemble_predicts_the_mean_of_its_members(members: dict[str, Path], ensemble: Path) -> None:
    run = Run.open(ensemble)
    images = np.random.default_rng(0).uniform(0, 255, (5, 28, 28, 3)).astype(np.float32)
    parts = [Run.open(members[k]).load_model().predict_on_batch(images) for k in ("a", "b")]
    np.testing.assert_allclose(run.load_model().predict_on_batch(images), np.mean(parts, axis=0), atol=1e-6)
    listed = json.loads(run.file("members.json").read_text())["members"]
    assert [m["seed"] for m in listed] == [1, 2]
    recorded = {"val", "test", "with_metadata", "abstention", "subgroups", "risk_coverage"}
    assert run.state().finished and set(run.metrics()) == recorded
    assert run.abstention() is not None  # the ensemble has its own detector, on all members' features
    # Its metadata model is refitted on the shared training split, so it matches the members'.
    assert run.metadata_model() == Run.open(members["a"]).metadata_model() is not None
    assert run.temperature() is not None  # calibrated on the shared validation split
    assert run.file("split.json").read_text() == Run.open(members["a"]).file("split.json").read_text()
    assert run.format_version() == FORMAT_VERSION  # an ensemble is a new run of the current format


def test_ensemble_run_is_evaluated_explained_and_exported_like_any_run(
    members: dict[str, Path], ensemble: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    evaluated = runner.invoke(
        main, ["evaluate", str(ensemble), "--bootstrap", "0", "--out", str(tmp_path / "e")]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert (tmp_path / "e" / "report.html").is_file()
    heat = gradcam(Run.open(ensemble).load_model(), np.zeros((2, 28, 28, 3), np.uint8) + 100)
    assert heat.shape == (2, 28, 28) and np.isfinite(heat).all()
    exported = runner.invoke(main, ["export", str(ensemble), "--out", str(tmp_path / "m.onnx")])
    assert exported.exit_code == 0, exported.output  # parity with Keras was checked before writing
    # Converted one member at a time (peak memory of one member), then joined: every member and the
    # head that averages them and scores OOD have their own part of the graph, fed by the one input.
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    assert {node.name.split("/")[0] for node in graph.node} == {"member_1", "member_2", "head"}
    assert [value.name for value in graph.input] == ["images"]
    assert [value.name for value in graph.output] == ["probabilities", "ood_score", "not_dermoscopy"]


def test_members_must_share_one_split_and_be_finished(members: dict[str, Path], tmp_path: Path) -> None:
    dataset = load_dataset(members["data"], size=28)
    with pytest.raises(ConfigError, match="split differs"):
        make_ensemble([members["a"], members["other"]], tmp_path / "x", dataset)
    with pytest.raises(ConfigError, match="at least two"):
        make_ensemble([members["a"]], tmp_path / "x", dataset)
    with pytest.raises(ConfigError, match="listed twice"):
        make_ensemble([members["a"], members["a"]], tmp_path / "x", dataset)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    Run(unfinished).write_config(TrainConfig())
    with pytest.raises(ConfigError, match="not finished"):
        make_ensemble([members["a"], unfinished], tmp_path / "x", dataset)
    assert not (tmp_path / "x").exists()


def test_cli_refuses_members_of_different_sizes(members: dict[str, Path], tmp_path: Path) -> None:
    big = Run.open(members["b"]).config().replace(image_size=32)
    other = tmp_path / "big"
    other.mkdir()
    for name in ("split.json", "state.json", "model.keras", "metrics.json"):
        (other / name).write_bytes((members["b"] / name).read_bytes())
    Run(other).write_config(big)
    result = CliRunner().invoke(
        main, ["ensemble", str(members["a"]), str(other), "--out", str(tmp_path / "e")]
    )
    assert result.exit_code == 1 and "image_size is 32" in result.output
    assert not (tmp_path / "e").exists()
    keras.backend.clear_session()


class _StopAtThirdEpoch(keras.callbacks.Callback):
    """Ctrl-C after the first epoch of the second member (members train 2 epochs each)."""

    ends = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        type(self).ends += 1
        if type(self).ends == 3:
            raise KeyboardInterrupt


def test_train_ensemble_continues_after_an_interruption(tmp_path: Path) -> None:
    dataset = tiny_dataset()
    config = TrainConfig(model="compact_cnn", epochs=2, batch_size=8, seed=5)
    with pytest.raises(KeyboardInterrupt):
        train_ensemble(dataset, config, 2, tmp_path / "ens", callbacks=[_StopAtThirdEpoch()])
    first = tmp_path / "ens" / "member-1"
    kept = (first / "model.keras").read_bytes(), (first / "history.csv").read_text()
    assert Run.open(tmp_path / "ens" / "member-2").state().epoch == 1
    train_ensemble(dataset, config, 2, tmp_path / "ens")
    assert ((first / "model.keras").read_bytes(), (first / "history.csv").read_text()) == kept
    second = Run.open(tmp_path / "ens" / "member-2")
    assert [row["epoch"] for row in second.history()] == [1, 2]
    assert (second.config().seed, second.config().split_seed) == (105, 5)
    assert Run.open(tmp_path / "ens").state().finished
    with pytest.raises(ConfigError, match="already holds a run"):
        train_ensemble(dataset, config, 2, tmp_path / "ens")


def test_cli_members_trains_and_averages(members: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "ens"
    args = ["train", "--data", members["data"], *MEMBER, "--members", "2", "--out", out]
    result = CliRunner().invoke(main, list(map(str, args)), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert [m["seed"] for m in json.loads((out / "members.json").read_text())["members"]] == [0, 100]
    assert "balanced accuracy" in result.output and (out / "report.html").is_file()


def test_predictor_serves_an_ensemble_run(ensemble: Path) -> None:
    (prediction,) = Predictor.load(ensemble).predict([encode(photo(), "PNG")], names=["lesion.png"])
    assert len(prediction.probabilities) == 7 and prediction.calibrated
    np.testing.assert_allclose(sum(prediction.probabilities), 1.0, rtol=1e-5)
