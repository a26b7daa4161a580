"""benchmarks/gpu.py runs end to end on a CPU with tiny settings, so the lead's one run on a GPU
machine does not fail on a detail; its figures here mean nothing and are not checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import write_ham_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_benchmark_trains_within_its_budget_and_prints_a_row(tmp_path: Path) -> None:
    data = write_ham_folder(tmp_path / "ham")
    tiny = ["--sizes", "32", "--models", "patch_cnn", "--epochs", "3", "--minutes", "0", "--batch-size", "16"]
    script = ROOT / "benchmarks" / "gpu.py"
    done = subprocess.run(
        [sys.executable, str(script), "--data", str(data), *tiny, "--keep", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| patch_cnn |")]
    assert len(rows) == 1, done.stdout
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert cells[1] == "32" and cells[3] == "16"
    assert cells[4] == "1"  # a zero budget stops after the first of 3 epochs...
    assert 0.0 <= float(cells[7]) <= 1.0  # ...and the run still finishes with test scores
    assert (tmp_path / "runs" / "patch_cnn-32" / "metrics.json").is_file()
    assert done.stdout.startswith("device: ")
