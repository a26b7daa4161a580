"""train --distributed: two processes on localhost (JAX backend, CPU collectives through gloo).

Each process is split into 2 logical CPU devices (SKINPAMPER_CPU_DEVICES=2), so the run is data-parallel
over 4 devices in 2 processes, as 2 hosts with 2 GPUs each would be.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from skinpamper.cli import main
from skinpamper.training.run import Run


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _jax_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "XLA_FLAGS"):
        env.pop(name, None)
    return {**env, **extra}


def _train(*args: object) -> list[str]:
    return [sys.executable, "-m", "skinpamper", "train", *map(str, args)]


@pytest.mark.slow
def test_two_processes_write_one_run_like_a_one_machine_run(
    ham_folder: Path, tmp_path: Path, trained_run: Path
) -> None:
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
    args += ["--members", "1", "--distributed", "--num-processes", "2"]
    coordinator = f"127.0.0.1:{_free_port()}"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    processes = [
        subprocess.Popen(
            _train(
                *args,
                "--process-id",
                k,
                "--out",
                tmp_path / f"run-{k}",
                *([] if k else ["--coordinator", coordinator]),
            ),
            # Process 1 finds its coordinator in JAX's own variable, process 0 in the flag.
            env=_jax_env(SKINPAMPER_CPU_DEVICES="2", TMPDIR=str(scratch), JAX_COORDINATOR_ADDRESS=coordinator)
            if k
            else _jax_env(SKINPAMPER_CPU_DEVICES="2"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in (1, 0)
    ]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=600)
        outputs.append((process.returncode, out, err))
    assert [code for code, _, _ in outputs] == [0, 0], [err[-2000:] for _, _, err in outputs]
    run = tmp_path / "run-0"
    # Process 1 wrote nothing: not its --out, and its private epoch records are gone.
    assert not (tmp_path / "run-1").exists() and list(scratch.iterdir()) == []
    assert "run folder:" not in outputs[0][1] and "run folder:" in outputs[1][1]  # one summary, by process 0
    environment = json.loads((run / "environment.json").read_text())
    assert environment["keras_backend"] == "jax"
    assert (environment["strategy"], environment["processes"], environment["replicas"]) == (
        "DataParallel",
        2,
        4,
    )
    # The same folder as one machine's run of the same command.
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in trained_run.iterdir())
    mine, theirs = Run(run).config().to_dict(), Run(trained_run).config().to_dict()
    for key in ("data_path", "data_path_given"):
        mine.pop(key), theirs.pop(key)
    assert mine == theirs
    assert [row["epoch"] for row in Run(run).history()] == [1] and Run(run).state().finished
    result = CliRunner().invoke(
        main, ["evaluate", str(run), "--out", str(tmp_path / "eval"), "--bootstrap", "0"]
    )
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_distributed_without_a_coordinator_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    command = _train("--data", tmp_path / "nowhere", "--distributed", "--out", tmp_path / "run")
    done = subprocess.run(command, env=_jax_env(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: --distributed needs --coordinator or $JAX_COORDINATOR_ADDRESS"
    )
    assert not (tmp_path / "run").exists()


def test_distributed_on_tensorflow_points_to_devices(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["train", "--distributed", "--coordinator", "h:1", "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 1 and "--distributed needs the JAX backend" in result.output
    assert "use --devices" in result.output and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_distributed_into_a_started_folder_is_refused_and_left_alone(tmp_path: Path) -> None:
    """Process 0 would resume while the others started afresh, and their collectives would not match."""
    started = tmp_path / "run"
    started.mkdir()
    (started / "member-1").mkdir()
    command = _train("--data", tmp_path / "nowhere", "--distributed", "--coordinator", "127.0.0.1:1")
    command += ["--num-processes", "2", "--process-id", "0", "--out", str(started)]
    done = subprocess.run(command, env=_jax_env(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: {started}: not empty; --distributed starts new runs only"), last
    assert [path.name for path in started.iterdir()] == ["member-1"]
