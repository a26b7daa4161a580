"""Streaming `predict`: the in-memory answer row for row, bounded decoding, chunked output that resumes."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from archive import MODEL, PATIENTS, assert_same_rows
from skinpamper.cli import main
from skinpamper.data.images import decode_images
from skinpamper.serving import batch
from skinpamper.serving.batch import decode_batch, score_files, stream_predictions
from skinpamper.serving.predict import Predictor

pytest_plugins = ["batch_fixtures"]


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.load(MODEL, tta=True)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_streaming_writes_the_in_memory_rows(
    suffix: str, predictor: Predictor, archive: list[Path], expected: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / f"scores{suffix}"
    summary = score_files(predictor, archive, out, batch_size=32, workers=2, patients=PATIENTS)
    assert (summary.scored, summary.failed, summary.skipped) == (300, 6, 0)
    found = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out, keep_default_na=False)
    assert_same_rows(found, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no parts or temporaries left
    good = [Path(name) for name in expected.loc[expected["error"].isna(), "image"]]
    infos = [PATIENTS.of(str(path)) for path in good]
    together = predictor.predict(good, [str(p) for p in good], infos)  # one in-memory batch
    np.testing.assert_allclose(
        [p.probabilities for p in together],
        found.loc[found["error"].isna() | (found["error"] == ""), [c for c in found if c.startswith("p_")]]
        .astype(float)
        .to_numpy(),
        atol=1e-6,
    )


def test_training_and_prediction_decode_a_file_identically(archive: list[Path], predictor: Predictor) -> None:
    card = predictor.card
    first = decode_batch(archive, [str(p) for p in archive], card.image_size, card.fit)
    good = [path for path, error in zip(archive, first.errors, strict=True) if error is None]
    assert len(good) == 300
    np.testing.assert_array_equal(decode_images(good, card.image_size, card.fit), first.images)


def test_decoding_runs_only_a_bounded_distance_ahead(
    archive: list[Path], predictor: Predictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    monkeypatch.setattr(batch, "decode_batch", lambda *args: calls.append(1) or decode_batch(*args))
    stream = stream_predictions(predictor, archive, batch_size=8, workers=2)  # 39 batches
    next(stream)
    assert len(calls) <= 2 + 2  # the workers' batches, one waiting, and the one handed out
    assert sum(len(results) for _, results in stream) == len(archive) - 8 and len(calls) == 39


def test_a_killed_job_resumes_losing_at_most_one_chunk(
    predictor: Predictor, archive: list[Path], expected: pd.DataFrame, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(batch, "CHUNK_ROWS", 50)
    out = tmp_path / "scores.parquet"

    def kill(done: int, total: int) -> None:
        if done >= 130:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_files(predictor, archive, out, batch_size=10, patients=PATIENTS, progress=kill)
    assert not out.exists()  # nothing under the final name until every image has a row
    resumed = score_files(predictor, archive, out, resume=True, batch_size=10, patients=PATIENTS)
    assert resumed.skipped >= 130 - 50 and resumed.scored + resumed.failed == len(archive) - resumed.skipped
    assert_same_rows(
        pd.read_parquet(out).sort_values("image", ignore_index=True),
        expected.sort_values("image", ignore_index=True),
    )


def test_resume_scores_only_new_and_failed_files(
    predictor: Predictor, archive: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "scores.csv"
    score_files(predictor, archive[:100], out)
    grown = [*archive[:100], *archive[250:]]
    again = score_files(predictor, grown, out, resume=True)
    failed_before = sum("bad" in p.name for p in archive[:100])
    assert again.skipped == 100 - failed_before  # broken files are tried again
    rows = pd.read_csv(out)
    assert sorted(rows["image"]) == sorted(map(str, grown)) and rows["image"].is_unique


def test_cli_out_reports_broken_files_and_exits_1(archive: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "scores.parquet"
    folder = archive[0].parents[1]
    result = CliRunner().invoke(main, ["predict", str(MODEL), str(folder), "--no-tta", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert f"wrote {out}: 300 scored, 6 failed (rows with their error), 0 already there" in result.stderr
    rows = pd.read_parquet(out)
    assert len(rows) == 306 and rows["error"].notna().sum() == 6
    assert rows.loc[rows["error"].notna(), "image"].str.contains("bad").all()
    again = CliRunner().invoke(main, ["predict", str(MODEL), str(folder), "--out", str(out), "--resume"])
    assert "0 scored, 6 failed (rows with their error), 300 already there" in again.stderr


def test_cli_stdout_csv_streams_the_same_rows(archive: list[Path], expected: pd.DataFrame, tmp_path) -> None:
    chosen = [str(path) for path in archive if path.parent.name == "part1"][:40]  # the broken files and more
    result = CliRunner().invoke(main, ["predict", str(MODEL), *chosen, "--format", "csv", "--no-tta"])
    assert result.exit_code == 1 and result.stderr.count("skipped: ") == 6
    found = pd.read_csv(io.StringIO(result.stdout), keep_default_na=False)
    assert found["image"].tolist() == chosen and (found["error"] != "").sum() == 6
    files = tmp_path / "rows.csv"
    written = CliRunner().invoke(main, ["predict", str(MODEL), *chosen, "--no-tta", "--out", str(files)])
    assert written.exit_code == 1
    assert found.equals(pd.read_csv(files, keep_default_na=False))  # stdout and --out: one row function


def test_bad_outputs_get_one_line_and_leave_no_file(
    archive: list[Path], onnx_model: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    photos = str(archive[0])
    missing = runner.invoke(main, ["predict", str(MODEL), photos, "--out", str(tmp_path / "no" / "s.csv")])
    assert missing.exit_code == 1 and missing.output.strip().endswith(
        f"folder {tmp_path / 'no'} does not exist"
    )
    wrong = runner.invoke(main, ["predict", str(MODEL), photos, "--out", str(tmp_path / "s.txt")])
    assert wrong.exit_code == 1 and "must end in .csv or .parquet" in wrong.output

    out = tmp_path / "s.csv"
    assert runner.invoke(main, ["predict", str(MODEL), photos, "--out", str(out)]).exit_code == 0
    before = out.read_bytes()
    other = runner.invoke(main, ["predict", str(onnx_model), photos, "--out", str(out), "--resume"])
    assert other.exit_code == 1 and len(other.output.strip().splitlines()) == 1
    assert f"{out}: written by model compact_cnn-dc87df978f74, not compact_cnn-" in other.output
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["s.csv"]


def test_an_unfinished_job_is_not_overwritten_without_resume(
    predictor: Predictor, archive: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "s.parquet"
    parts = tmp_path / ".s.parquet.parts"
    parts.mkdir()
    (parts / "000000.parquet").write_bytes(b"rows of a killed job")
    result = CliRunner().invoke(main, ["predict", str(MODEL), str(archive[0]), "--out", str(out)])
    assert result.exit_code == 1 and "add --resume to keep them, or delete that folder" in result.output
    shutil.rmtree(parts)


def test_options_that_need_out_or_ray_are_refused(archive: list[Path]) -> None:
    runner = CliRunner()
    photo = str(archive[0])
    assert "add --out" in runner.invoke(main, ["predict", str(MODEL), photo, "--resume"]).output
    assert (
        "add --engine ray" in runner.invoke(main, ["predict", str(MODEL), photo, "--address", "x:1"]).output
    )
    uri = runner.invoke(main, ["predict", str(MODEL), "s3://bucket/photos"])
    assert uri.exit_code == 2 and "URIs are read by --engine ray only" in uri.output


def test_a_second_job_on_the_same_output_refuses_and_the_first_completes(
    predictor: Predictor, archive: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "scores.parquet"
    second = []

    def start_another(done: int, total: int) -> None:
        if not second:  # while the first job holds the output, halfway through its parts
            args = ["predict", str(MODEL), str(archive[0]), "--out", str(out), "--resume"]
            second.append(CliRunner().invoke(main, args))
            assert sorted(p.name for p in (tmp_path / ".scores.parquet.parts").iterdir()) == ["job.json"]

    summary = score_files(predictor, archive, out, batch_size=32, progress=start_another)
    assert second[0].exit_code == 1
    assert second[0].output == f"Error: {out}: in use by pid {os.getpid()}\n"
    assert summary.scored + summary.failed == len(archive) == len(pd.read_parquet(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no parts, no lock file left


def test_a_fifo_given_as_an_image_is_an_error_row_not_a_hang(archive: list[Path], tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    out = tmp_path / "scores.csv"
    args = ["predict", str(MODEL), str(archive[0]), str(fifo), "--no-tta", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    rows = pd.read_csv(out, keep_default_na=False)
    assert rows["error"].tolist() == ["", f"{fifo}: a FIFO, not a regular file"]


def test_any_file_name_round_trips_and_csv_cells_never_run_as_formulas(
    archive: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    good = archive[0].read_bytes()
    names = {b"caf\xe9.jpg": "caf\\xe9.jpg", b"=cmd.jpg": "=cmd.jpg", b"-1+2.jpg": "-1+2.jpg"}
    for raw in names:
        Path(os.fsdecode(raw)).write_bytes(good)
    given = [os.fsdecode(raw) for raw in names]
    runner = CliRunner()
    for out in ("s.csv", "s.parquet"):
        assert (
            runner.invoke(main, ["predict", "--no-tta", "--out", out, str(MODEL), "--", *given]).exit_code
            == 0
        )
        again = runner.invoke(
            main, ["predict", "--no-tta", "--out", out, "--resume", str(MODEL), "--", *given]
        )
        assert "0 scored, 0 failed (rows with their error), 3 already there" in again.stderr
    assert pd.read_parquet("s.parquet")["image"].tolist() == list(names.values())
    assert pd.read_csv("s.csv")["image"].tolist() == ["caf\\xe9.jpg", "'=cmd.jpg", "'-1+2.jpg"]
    printed = runner.invoke(main, ["predict", "--no-tta", "--format", "json", str(MODEL), "--", *given])
    assert [p["image"] for p in json.loads(printed.stdout)["predictions"]] == list(names.values())
    streamed = runner.invoke(main, ["predict", "--no-tta", "--format", "csv", str(MODEL), "--", *given])
    assert pd.read_csv(io.StringIO(streamed.stdout))["image"].tolist()[1:] == ["'=cmd.jpg", "'-1+2.jpg"]


def test_a_read_only_output_folder_is_one_line_naming_it(archive: list[Path], tmp_path: Path) -> None:
    # root writes anywhere it has mode bits for; sysfs refuses new files even to root.
    folder = Path("/sys") if os.geteuid() == 0 else tmp_path / "read-only"
    if folder != Path("/sys"):
        folder.mkdir(mode=0o555)
    before = sorted(folder.iterdir())
    result = CliRunner().invoke(
        main, ["predict", str(MODEL), str(archive[0]), "--out", str(folder / "s.csv")]
    )
    assert result.exit_code == 1 and result.output == f"Error: {folder}/.s.csv.lock: Permission denied\n"
    assert sorted(folder.iterdir()) == before
