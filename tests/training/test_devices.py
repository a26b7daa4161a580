"""train on 2 devices (MirroredStrategy over SKINPAMPER_CPU_DEVICES=2 logical CPUs) against one device.

Each training runs in a fresh process (devices_worker.py, or the CLI): TensorFlow fixes its logical
devices once per process. Keras has shipped gradient-aggregation bugs under MirroredStrategy
(keras#19891, #20568, #21061); these tests are what would catch one in the versions installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from skinpamper.cli import main
from skinpamper.errors import ConfigError
from skinpamper.runfolder.files import BEST_MODEL, LAST_MODEL
from skinpamper.training.config import TrainConfig
from skinpamper.training.devices import (
    describe_cpu,
    device_name,
    find_accelerator,
    list_devices,
    resolve_device_count,
)
from skinpamper.training.run import Run

WORKER = Path(__file__).with_name("devices_worker.py")
TESTS = Path(__file__).resolve().parents[1]
# Two replicas each sum half the batch and the halves are then added: the same sums as one device's, in
# another order. float32 rounding of reordered sums differs by ~1e-7 relative per step; over this run's
# 16 Adam steps the weights were measured to differ by at most 4.5e-8. Doubling the learning rate (the
# step a summed instead of averaged gradient takes under SGD) moved them by 5.8e-2.
TOLERANCE = 1e-5
LEARNING_RATE = 0.01


def _env(cpu_devices: int | None = None, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(TESTS), "TF_CPP_MIN_LOG_LEVEL": "3", **extra}
    env.pop("SKINPAMPER_CPU_DEVICES", None)
    if cpu_devices:
        env["SKINPAMPER_CPU_DEVICES"] = str(cpu_devices)
    return env


def _worker(*args: object, cpu_devices: int | None = None) -> subprocess.Popen:
    command = [sys.executable, str(WORKER), *map(str, args)]
    return subprocess.Popen(command, env=_env(cpu_devices), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode()[-3000:]
    return out.decode()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """one: 1 device; two: 2 replicas; fast: 1 device at twice the learning rate; killed: 2 replicas,
    kill -9 after epoch 1, then resumed (in a fresh process, which must read 2 devices from config)."""
    root = tmp_path_factory.mktemp("devices")
    paths = {name: root / name for name in ("one", "two", "fast", "killed")}
    started = [
        _worker("train", paths["one"], 1, LEARNING_RATE, "class_weight"),
        _worker("train", paths["two"], 2, LEARNING_RATE, "class_weight", cpu_devices=2),
        _worker("train", paths["fast"], 1, 2 * LEARNING_RATE, "class_weight"),
    ]
    killed = _worker("killed", paths["killed"], 2, LEARNING_RATE, "class_weight", cpu_devices=2)
    killed.communicate(timeout=300)
    assert killed.returncode == -9
    started.append(_worker("resume", paths["killed"], cpu_devices=2))
    for process in started:
        _finish(process)
    return paths


def _weights(run: Path) -> list[np.ndarray]:
    return Run(run).load_model(LAST_MODEL).get_weights()


def _largest_difference(a: Path, b: Path) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(_weights(a), _weights(b), strict=True))


@pytest.mark.slow
def test_two_replicas_train_the_weights_one_device_trains(runs: dict[str, Path]) -> None:
    assert _largest_difference(runs["one"], runs["two"]) <= TOLERANCE
    # The tolerance is far below what a twice-too-large step does, so it would catch one.
    assert _largest_difference(runs["one"], runs["fast"]) >= 100 * TOLERANCE
    one, two = Run(runs["one"]).history(), Run(runs["two"]).history()
    assert [row["epoch"] for row in two] == [1, 2]
    for a, b in zip(one, two, strict=True):
        for key in ("loss", "val_loss", "val_balanced_accuracy", "balanced_accuracy", "lr"):
            assert abs(a[key] - b[key]) <= TOLERANCE, key
    tests = [Run(runs[name]).metrics()["test"] for name in ("one", "two")]
    for key in ("balanced_accuracy", "accuracy", "macro_auc"):
        assert abs(tests[0][key] - tests[1][key]) <= TOLERANCE, key


@pytest.mark.slow
def test_gradients_are_averaged_over_replicas_not_summed() -> None:
    """Adam's steps do not change when every gradient is doubled, so the training test above cannot
    see a sum; one plain SGD step on one batch can."""
    one = json.loads(_finish(_worker("sgd_step", 1)))
    two = json.loads(_finish(_worker("sgd_step", 2, cpu_devices=2)))
    assert np.allclose(one, two, rtol=1e-5) and min(one) > 0


@pytest.mark.slow
def test_a_run_killed_on_two_devices_resumes_on_them_to_the_uninterrupted_result(
    runs: dict[str, Path],
) -> None:
    assert Run(runs["killed"]).config().devices == 2
    assert [row["epoch"] for row in Run(runs["killed"]).history()] == [1, 2]
    assert _largest_difference(runs["killed"], runs["two"]) <= TOLERANCE


@pytest.mark.slow
def test_environment_records_the_strategy_and_its_devices(runs: dict[str, Path]) -> None:
    two = json.loads((runs["two"] / "environment.json").read_text())
    assert (two["strategy"], two["replicas"], two["processes"]) == ("MirroredStrategy", 2, 1)
    assert two["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    one = json.loads((runs["one"] / "environment.json").read_text())
    assert (one["strategy"], one["replicas"], len(one["devices"])) == (None, 1, 1)


@pytest.mark.slow
def test_the_saved_model_is_a_plain_float32_model(runs: dict[str, Path]) -> None:
    """Loaded here, in a process with one device and no strategy."""
    model = Run(runs["two"]).load_model(BEST_MODEL)
    assert {w.dtype for w in model.weights} == {"float32"}
    probs = model.predict(np.zeros((3, 8, 8, 3), np.float32), verbose=0)
    assert probs.shape == (3, 7) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


@pytest.mark.slow
def test_an_ensemble_with_colour_layer_balanced_sampling_and_metadata_trains_on_two_devices(
    ham_folder: Path, tmp_path: Path
) -> None:
    """Through the CLI, then evaluated (Grad-CAM in its report) in this one-device process."""
    out = tmp_path / "run"
    args = [
        "--data",
        ham_folder,
        "--model",
        "compact_cnn",
        "--image-size",
        "28",
        "--epochs",
        "1",
        "--batch-size",
        "8",
    ]
    args += ["--devices", "2", "--members", "2", "--colour-constancy", "--imbalance", "balanced_sampling"]
    done = subprocess.run(
        [sys.executable, "-m", "skinpamper", "train", *map(str, args), "--out", str(out)],
        env=_env(2),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for member in ("member-1", "member-2", "."):  # the ensemble's own record says how it was trained
        assert json.loads((out / member / "environment.json").read_text())["replicas"] == 2
        assert (out / member / "metadata_model.json").is_file()
    assert {layer.name for layer in Run(out / "member-1").load_model().layers} >= {"shades_of_grey"}
    result = CliRunner().invoke(
        main, ["evaluate", str(out), "--out", str(tmp_path / "eval"), "--bootstrap", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "Grad-CAM" in (tmp_path / "eval" / "report.html").read_text()


def _train(tmp_path: Path, *args: str, cpu_devices: int | None = None, **env: str) -> tuple[int, str]:
    """The CLI in a fresh process (its backend and devices are fixed at start); exit code and stderr."""
    command = [sys.executable, "-m", "skinpamper", "train", "--data", str(tmp_path / "nowhere"), *args]
    command += ["--out", str(tmp_path / "run")]
    done = subprocess.run(
        command, env=_env(cpu_devices, **env), capture_output=True, text=True, timeout=300, check=False
    )
    return done.returncode, done.stderr


def test_more_devices_than_the_machine_has_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SKINPAMPER_CPU_DEVICES", raising=False)
    result = CliRunner().invoke(main, ["train", "--devices", "3", "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "Error: --devices 3: this machine has 1 CPU device(s)" in result.output
    assert "SKINPAMPER_CPU_DEVICES" in result.output and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_batch_that_does_not_split_over_the_devices_is_refused(tmp_path: Path) -> None:
    code, err = _train(tmp_path, "--devices", "2", "--batch-size", "9", cpu_devices=2)
    assert code == 1 and err.strip().splitlines()[-1] == (
        "Error: options: batch_size 9 does not split evenly over 2 devices; choose a multiple of 2"
    )
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="does not split evenly"):
        TrainConfig(batch_size=63, devices=2)


@pytest.mark.slow
def test_devices_on_the_jax_backend_points_to_distributed(tmp_path: Path) -> None:
    code, err = _train(tmp_path, "--devices", "2", KERAS_BACKEND="jax")
    assert code == 1 and err.strip().splitlines()[-1] == (
        "Error: --devices needs the TensorFlow backend (KERAS_BACKEND is jax); "
        "on JAX, train with --distributed"
    )
    assert not (tmp_path / "run").exists()


def test_devices_on_the_torch_backend_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch is not installed here, so its backend is stood in for by the name Keras reports."""
    monkeypatch.setattr("keras.backend.backend", lambda: "torch")
    with pytest.raises(ConfigError, match="--devices needs the TensorFlow backend .KERAS_BACKEND is torch."):
        resolve_device_count("all")


def test_the_cpu_is_read_from_cpuinfo_and_unknown_where_there_is_none(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 amx_bf16\n\n"
        "processor\t: 1\nmodel name\t: Test CPU\nflags\t\t: fpu\n"
    )
    cpu = describe_cpu(cpuinfo)
    assert cpu.model == "Test CPU" and cpu.flags == {"fpu", "avx2", "amx_bf16"} and cpu.native_bf16
    assert cpu.cores is not None and cpu.cores >= 1
    missing = describe_cpu(tmp_path / "missing")
    assert missing.model == "unknown" and not missing.flags and not missing.native_bf16


def test_the_device_queries_describe_this_machine_alike() -> None:
    """What precision "auto" asks, what environment.json records and what `skinpamper env` lists agree."""
    accelerator = find_accelerator()
    listing = list_devices()
    if accelerator.gpu is None:
        assert device_name().startswith("CPU (") and not accelerator.native_bf16
    else:
        assert device_name() == accelerator.gpu
        assert any(name.startswith(accelerator.gpu) for name in listing["accelerators"])
    if keras.backend.backend() == "tensorflow":
        assert "CPU:0" in listing["physical"]
