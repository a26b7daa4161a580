"""`predict --engine ray`: Ray Data, local (2 CPUs, no dashboard), writes the rows of the other engines."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from archive import MODEL, PATIENTS, assert_same_rows
from service_helpers import BLOCK_TRAINING_BACKENDS
from skinpamper.cli import main
from skinpamper.serving.ray_batch import ray_session, score_with_ray

pytest_plugins = ["batch_fixtures"]
pytestmark = pytest.mark.slow  # a local Ray cluster starts for the module


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    """One local Ray for the module: starting one takes seconds."""
    with ray_session(num_cpus=2):
        yield


def test_ray_writes_the_in_memory_rows(archive: list[Path], expected: pd.DataFrame, tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    summary = score_with_ray(MODEL, archive, out, tta=True, batch_size=32, patients=PATIENTS)
    assert (summary.scored, summary.failed) == (300, 6)
    assert_same_rows(pd.read_csv(out, keep_default_na=False), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]


def test_ray_reads_uris_and_resumes(archive: list[Path], tmp_path: Path, expected: pd.DataFrame) -> None:
    uri = f"file://{archive[0].parents[1]}"  # a URI as for s3:// or gs://, read by read_binary_files
    out = tmp_path / "scores.parquet"
    first = score_with_ray(MODEL, [uri], out, tta=True, patients=PATIENTS)
    assert (first.scored, first.failed, first.skipped) == (300, 6, 0)
    rows = pd.read_parquet(out).sort_values("image", ignore_index=True)
    assert rows["image"].str.startswith("file:///").all()
    rows["image"] = rows["image"].str.removeprefix("file://")
    expected = expected.sort_values("image", ignore_index=True)
    failed = rows["error"].notna()
    assert failed.tolist() == expected["error"].notna().tolist()  # messages name the URI instead
    assert_same_rows(rows[~failed], expected[~failed])
    again = score_with_ray(MODEL, [uri], out, resume=True, tta=True, patients=PATIENTS)
    assert (again.scored, again.failed, again.skipped) == (0, 6, 300)  # broken files are tried again
    assert len(pd.read_parquet(out)) == 306


def test_cli_ray_engine_and_its_errors(archive: list[Path], tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "s.parquet"
    photos = [str(p) for p in archive[:20]]
    ray_job = ["--out", str(out), "--engine", "ray"]
    done = runner.invoke(main, ["predict", str(MODEL), *photos, "--no-tta", *ray_job])
    assert done.exit_code == 0 and "wrote" in done.stderr and len(pd.read_parquet(out)) == 20
    folder_model = runner.invoke(main, ["predict", str(MODEL.parent), *photos, *ray_job])
    assert folder_model.exit_code == 1 and "export the run first: skinpamper export" in folder_model.output


def test_an_unreachable_cluster_fails_fast_with_one_line(archive: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    start = time.perf_counter()
    args = ["predict", str(MODEL), str(archive[0]), "--out", str(out), "--engine", "ray"]
    result = CliRunner().invoke(main, [*args, "--address", "127.0.0.1:9"])
    assert result.exit_code == 1 and time.perf_counter() - start < 30
    assert result.output.strip().splitlines() == [
        "Error: --address 127.0.0.1:9: no Ray cluster answers there ([Errno 111] Connection refused)"
    ]
    assert not any(tmp_path.iterdir())


def test_without_the_extra_the_error_names_it(archive: list[Path], tmp_path: Path) -> None:
    import subprocess
    import sys

    block = BLOCK_TRAINING_BACKENDS.replace('"jax")', '"jax", "ray")')
    code = f"""
from click.testing import CliRunner
from skinpamper.cli import main
args = ["predict", {str(MODEL)!r}, {str(archive[0])!r}, "--out", {str(tmp_path / "s.csv")!r}]
r = CliRunner().invoke(main, [*args, "--engine", "ray"])
print(r.exit_code, r.output)
"""
    done = subprocess.run([sys.executable, "-c", block + code], capture_output=True, text=True, timeout=120)
    assert (
        done.stdout.strip()
        == "1 Error: --engine ray needs Ray, which is not installed: pip install 'skinpamper[ray]'"
    )
    assert not any(tmp_path.iterdir())
    shutil.rmtree(tmp_path, ignore_errors=True)
