"""`skinpamper env`: a readable report of backend, devices, precision and cached weights, made offline."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import keras
import pytest
from click.testing import CliRunner

from skinpamper.cli import main
from skinpamper.models.applications import BACKBONES
from skinpamper.training.precision import resolve_precision


@pytest.fixture
def offline_keras_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Keras cache folder, and no network: any connection attempt fails the command."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("skinpamper env tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("SKINPAMPER_CPU_DEVICES", raising=False)
    return tmp_path / "keras"


def _env(*args: str) -> str:
    result = CliRunner().invoke(main, ["env", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_env_json_reports_which_imagenet_weights_are_cached(offline_keras_home: Path) -> None:
    before = json.loads(_env("--json"))["imagenet_weights"]
    assert set(before) == set(BACKBONES)
    assert not any(weights["cached"] for weights in before.values())

    models = offline_keras_home / "models"
    models.mkdir(parents=True)
    (models / "efficientnetb0_notop.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    after = json.loads(_env("--json"))["imagenet_weights"]
    assert after["efficientnet_b0"] == {"file": str(models / "efficientnetb0_notop.h5"), "cached": True}
    assert not after["resnet50"]["cached"] and not after["mobilenet_v3_small"]["cached"]


def test_env_prints_backend_devices_precision_and_the_cache(offline_keras_home: Path) -> None:
    text = _env()  # SKINPAMPER_CPU_DEVICES is tried in a fresh process below: here it would split this one
    backend = keras.backend.backend()
    assert f"backend {backend} " in text
    assert f"keras {keras.__version__}" in text
    assert 'precision "auto" picks: ' in text
    assert "XLA (jit_compile): auto -> " in text
    assert "SKINPAMPER_CPU_DEVICES: not set" in text
    missing = "missing (the first pretrained run downloads it)"
    assert f"efficientnet_b0      {missing}: {offline_keras_home / 'models'}" in text
    if backend == "tensorflow":
        assert "CPU:0" in text.split("devices the backend sees: ")[1].splitlines()[0]


def test_env_json_holds_the_versions_environment_json_records(offline_keras_home: Path) -> None:
    report = json.loads(_env("--json"))
    assert report["keras"] == keras.__version__
    assert report["keras_backend"] == keras.backend.backend()
    assert report["backend_version"] and report["numpy"]
    assert report["packages"]["skinpamper"] == report["skinpamper"]
    assert report["precision_auto"] == resolve_precision("auto")
    assert report["cpu_devices_variable"] == {
        "name": "SKINPAMPER_CPU_DEVICES",
        "value": None,
        "not_applied": None,
    }


@pytest.mark.slow
def test_env_splits_the_cpu_as_training_would(tmp_path: Path) -> None:
    """In a fresh process, as a user runs it: SKINPAMPER_CPU_DEVICES=2 shows two logical CPUs."""
    import os
    import subprocess
    import sys

    if keras.backend.backend() != "tensorflow":
        pytest.skip("logical CPU devices are listed by TensorFlow")
    env = {**os.environ, "SKINPAMPER_CPU_DEVICES": "2", "KERAS_HOME": str(tmp_path)}
    command = [str(Path(sys.executable).with_name("skinpamper")), "env"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "logical devices: CPU:0, CPU:1" in done.stdout
    assert "SKINPAMPER_CPU_DEVICES: 2\n" in done.stdout
