"""The scores file under crashes: whenever a job is killed, a --resume ends with every image exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from archive import MODEL, write_archive
from skinpamper.atomic import host_id
from skinpamper.serving import score_file
from skinpamper.serving.batch import score_files
from skinpamper.serving.predict import Predictor, find_images

# Scores a folder into an output with --resume, in small parts, after saying it is ready.
JOB = """
import sys
from skinpamper.serving import batch
from skinpamper.serving.predict import Predictor, find_images

batch.CHUNK_ROWS = 6
predictor = Predictor.load(sys.argv[1], tta=False)
paths = find_images([sys.argv[2]])
print("ready", flush=True)
batch.score_files(predictor, paths, sys.argv[3], resume=True, batch_size=6, workers=1)
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 small images and 3 broken files: a job of a few parts that runs in a fraction of a second."""
    photos = tmp_path_factory.mktemp("small") / "photos"
    write_archive(photos, n=40, broken=3)
    return photos


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.load(MODEL, tta=False)


def start_job(folder: Path, out: Path) -> tuple[subprocess.Popen, float]:
    process = subprocess.Popen(
        [sys.executable, "-c", JOB, str(MODEL), str(folder), str(out)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    return process, time.perf_counter()


def assert_each_image_once(out: Path, folder: Path) -> None:
    rows = pd.read_parquet(out)
    assert sorted(map(os.path.realpath, rows["image"])) == sorted(
        map(os.path.realpath, find_images([folder]))
    )


@pytest.mark.slow
def test_kill_dash_9_anywhere_then_resume_scores_each_image_exactly_once(
    folder: Path, predictor: Predictor, tmp_path: Path
) -> None:
    process, started = start_job(folder, tmp_path / "timing.parquet")
    assert process.wait(timeout=60) == 0
    duration = time.perf_counter() - started  # from ready to done: the span the kills fall in
    rng = random.Random(19)
    for attempt in range(20):
        out = tmp_path / f"try{attempt}" / "scores.parquet"
        out.parent.mkdir()
        # Half the tries resume through another spelling of the same folder: one image, one row.
        spelling = folder if attempt % 2 else folder / ".." / folder.name
        process, started = start_job(spelling, out)
        time.sleep(rng.uniform(0, 1.2 * duration))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        score_files(predictor, find_images([folder]), out, resume=True, batch_size=6, workers=1)
        assert_each_image_once(out, folder)
        assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no parts, temporaries, lock


def test_a_job_killed_after_its_output_took_its_name_is_not_counted_twice(
    folder: Path, predictor: Predictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "scores.parquet"
    paths = find_images([folder])

    def killed(path: Path) -> None:
        raise KeyboardInterrupt  # the output is in place, its parts folder not yet removed

    with monkeypatch.context() as patch:
        patch.setattr(score_file.shutil, "rmtree", killed)
        with pytest.raises(KeyboardInterrupt):
            score_files(predictor, paths, out, batch_size=6)
    assert out.exists() and score_file.parts_folder(out).exists()
    again = score_files(predictor, paths, out, resume=True, batch_size=6)
    assert again.skipped == 40 and again.scored == 0
    assert_each_image_once(out, folder)


def test_a_temporary_left_by_a_killed_writer_is_never_a_part(
    folder: Path, predictor: Predictor, tmp_path: Path
) -> None:
    out = tmp_path / "scores.parquet"
    parts = score_file.parts_folder(out)
    parts.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    stale = parts / f".000000.{host_id()}-{int(dead.stdout)}-abcd1234.tmp.parquet"
    stale.write_bytes(b"half a part")
    score_files(predictor, find_images([folder]), out, resume=True, batch_size=6)
    assert_each_image_once(out, folder)
    assert not parts.exists()
