"""A damaged run folder, met by every command: one line naming the file, never a traceback.

Each file a command reads is truncated, emptied and deleted in turn, on a copy of the session's
trained run; the command either still works (a run without calibration.json is an uncalibrated run)
or exits 1 with one `Error:` line that names the file. One more run per command damages every file
it is not listed as reading, all at once, and must succeed: so the table of reads cannot hide one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from skinpamper.atomic import host_id
from skinpamper.cli import main
from skinpamper.errors import ConfigError
from skinpamper.runfolder import refuse_run_folder
from skinpamper.runfolder.files import (
    ABSTENTION,
    BEST_MODEL,
    CALIBRATION,
    CONFIG,
    DATASET,
    ENVIRONMENT,
    HISTORY,
    LAST_MODEL,
    METADATA_MODEL,
    METRICS,
    OOD_DETECTOR,
    RUN_INFO,
    SPLIT,
    STATE,
)
from skinpamper.training.run import Run

RUN_FILES = (CONFIG, SPLIT, DATASET, ENVIRONMENT, HISTORY, BEST_MODEL, LAST_MODEL, STATE, METRICS)
RUN_FILES += (CALIBRATION, METADATA_MODEL, ABSTENTION, OOD_DETECTOR, RUN_INFO)
# What loading a model reads: its card, thresholds and detector, and the files its model card is made of
# (every read migrates from the format run.json records)
CARD = {
    RUN_INFO,
    CONFIG,
    BEST_MODEL,
    METRICS,
    CALIBRATION,
    METADATA_MODEL,
    ABSTENTION,
    OOD_DETECTOR,
    DATASET,
    ENVIRONMENT,
}
# The files each command reads from a finished run. resume re-scores a finished run, so it writes
# metrics.json and calibration.json before it reads them; the report it ends with reads dataset.json.
READS: dict[str, set[str]] = {
    "predict": CARD,
    "serve": CARD,
    "export": CARD,
    "evaluate": {CONFIG, SPLIT, BEST_MODEL, CALIBRATION, METADATA_MODEL, DATASET, HISTORY, ABSTENTION}
    | {OOD_DETECTOR, METRICS, ENVIRONMENT, RUN_INFO},  # the evaluation's model card reads the run's own
    "compare": {CONFIG, METRICS, HISTORY, RUN_INFO},
    "resume": {CONFIG, SPLIT, STATE, BEST_MODEL, METADATA_MODEL, DATASET, ENVIRONMENT, RUN_INFO},
}
DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "emptied": lambda path: path.write_bytes(b""),
    "deleted": lambda path: path.unlink(),
}


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("image") / "lesion.png"
    Image.new("RGB", (30, 20), (180, 90, 60)).save(path)
    return path


def command_args(command: str, run: Path, image: Path, tmp: Path) -> list[str]:
    return {
        "predict": ["predict", str(run), str(image), "--no-tta", "--format", "json"],
        "serve": ["serve", str(run), "--port", "0"],
        "export": ["export", str(run), "--out", str(tmp / "exported.onnx")],
        "evaluate": ["evaluate", str(run), "--out", str(tmp / "evaluation"), "--no-tta", "--bootstrap", "0"],
        "compare": ["compare", str(run)],
        "resume": ["train", "--resume", str(run)],
    }[command]


def run_command(args: list[str], monkeypatch: pytest.MonkeyPatch) -> Result:
    # serve: everything up to the moment it would start answering, on a free port.
    monkeypatch.setattr("skinpamper.serving.service.server.serve", lambda app, sock, settings: sock.close())
    result = CliRunner().invoke(main, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback: the test fails showing it
    return result


def assert_clean(result: Result, damaged: Path) -> None:
    """Success, or exit 1 with exactly one line, an Error naming the damaged file."""
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        return
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and damaged.name in lines[0], lines[0]


# evaluate scores the test split and resume re-scores the run: seconds a case, so slow (`-m "not slow"`).
SLOW_COMMANDS = {"evaluate", "resume"}


def _marks(command: str) -> list[pytest.MarkDecorator]:
    return [pytest.mark.slow] if command in SLOW_COMMANDS else []


def cases() -> list[object]:
    return [
        pytest.param(c, name, kind, marks=_marks(c))
        for c, names in READS.items()
        for name in sorted(names)
        for kind in DAMAGE
    ]


@pytest.mark.parametrize(("command", "name", "kind"), cases())
def test_a_damaged_file_is_one_line_naming_it(
    trained_run: Path,
    image: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    name: str,
    kind: str,
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    DAMAGE[kind](run / name)
    assert_clean(run_command(command_args(command, run, image, tmp_path), monkeypatch), run / name)


@pytest.mark.parametrize("command", [pytest.param(c, marks=_marks(c)) for c in sorted(READS)])
def test_files_a_command_does_not_read_cannot_stop_it(
    trained_run: Path, image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    for name in set(RUN_FILES) - READS[command]:
        DAMAGE["emptied"](run / name)
    result = run_command(command_args(command, run, image, tmp_path), monkeypatch)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_resume_of_an_interrupted_run_with_a_damaged_checkpoint(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    config = json.loads((run / CONFIG).read_text())
    (run / CONFIG).write_text(json.dumps({**config, "epochs": 2}))  # one epoch done, one to go
    state = json.loads((run / STATE).read_text())
    (run / STATE).write_text(json.dumps({**state, "finished": False}))
    DAMAGE[kind](run / LAST_MODEL)
    result = run_command(["train", "--resume", str(run)], monkeypatch)
    assert result.exit_code == 1
    assert_clean(result, run / LAST_MODEL)


@pytest.mark.parametrize(
    "metrics",
    [
        {"run": "r", "part": "test", "plain": {}, "tta": None, "with_metadata": None},  # an evaluation's
        {"val": {"n": 1}, "test": {"n": 1}},
        [1, 2],
    ],
)
def test_metrics_of_the_wrong_shape_are_damage_too(
    trained_run: Path, image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, metrics: object
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / METRICS).write_text(json.dumps(metrics))  # valid JSON, but not what training writes
    for command in ("predict", "compare"):
        result = run_command(command_args(command, run, image, tmp_path), monkeypatch)
        assert result.exit_code == 1
        assert_clean(result, run / METRICS)
    assert "metrics.json: damaged (" in result.output


@pytest.mark.parametrize("name", [CONFIG, SPLIT, STATE])
def test_ensemble_names_a_damaged_member_file(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    shutil.copytree(trained_run, first)
    shutil.copytree(trained_run, second)
    DAMAGE["truncated"](second / name)
    result = run_command(["ensemble", str(first), str(second), "--out", str(tmp_path / "mean")], monkeypatch)
    assert result.exit_code == 1 and not (tmp_path / "mean").exists()
    assert_clean(result, second / name)


def test_opening_a_run_sweeps_what_a_killed_writer_left(trained_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = run / f".last.{host_id()}-{int(gone.stdout)}-abcd1234.tmp.keras"  # its process has exited
    live = run / f".state.{host_id()}-{os.getpid()}-abcd1234.tmp.json"  # this process is still writing it
    stale.write_bytes(b"half a checkpoint")
    live.write_bytes(b"{")
    Run.open(run)
    assert not stale.exists() and live.exists()


def test_data_path_is_stored_absolute_beside_the_path_as_given(
    ham_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ham_folder.parent)
    run = Run.create(tmp_path / "run")
    from skinpamper.training.config import TrainConfig

    run.write_config(TrainConfig(data_path=ham_folder.name))
    saved = json.loads((tmp_path / "run" / CONFIG).read_text())
    assert saved["data_path"] == str(ham_folder.resolve()) and saved["data_path_given"] == ham_folder.name
    monkeypatch.chdir(tmp_path)  # elsewhere, the absolute path still finds the data
    assert run.data_path() == str(ham_folder.resolve())


def test_an_old_run_with_a_relative_data_path_works_where_it_resolves(
    ham_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skinpamper.training.config import TrainConfig

    run = Run.create(tmp_path / "run")
    (tmp_path / "run" / RUN_INFO).unlink()  # saved before the format was recorded: format 0
    saved = {**TrainConfig().to_dict(), "data_path": ham_folder.name}  # the path as given
    del saved["data_path_given"]
    (tmp_path / "run" / CONFIG).write_text(json.dumps(saved))
    monkeypatch.chdir(ham_folder.parent)
    assert run.data_path() == ham_folder.name
    monkeypatch.chdir(tmp_path / "run")
    with pytest.raises(
        ConfigError,
        match=r"config.json: data_path 'ham' is relative .* also take the path again with --data\)$",
    ):
        run.data_path()


def test_evaluate_refuses_to_write_into_a_run(trained_run: Path, trained_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    half = tmp_path / "half"  # a run being made: no config.json yet, but its checkpoint
    half.mkdir()
    (half / LAST_MODEL).write_bytes((run / LAST_MODEL).read_bytes())
    for out in (run, half):
        result = CliRunner().invoke(main, ["evaluate", str(run), "--out", str(out), "--bootstrap", "0"])
        assert result.exit_code == 1 and result.output.startswith(f"Error: {out}: holds a training run")
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before
    beside = CliRunner().invoke(main, ["predict", str(run), str(trained_data), "--no-tta"])
    assert beside.exit_code == 0, beside.output  # the run still predicts


def test_an_evaluations_folder_can_be_evaluated_into_again(tmp_path: Path) -> None:
    for name in ("metrics.json", "predictions.csv", "report.html", "summary.md"):  # what evaluate writes
        (tmp_path / name).write_text("{}")
    refuse_run_folder(tmp_path, "an evaluation")  # no error


def test_a_folder_with_only_part_of_a_run_is_not_trained_over(tmp_path: Path) -> None:
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / LAST_MODEL).write_bytes(b"a checkpoint, config.json lost")
    with pytest.raises(ConfigError, match="already holds a run"):
        Run.create(tmp_path / "half")
