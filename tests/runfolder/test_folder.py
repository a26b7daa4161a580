"""RunFolder reads and writes a run's files without Keras, checks each against its schema, and names
the file and the field of any damage in one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from skinpamper import __version__
from skinpamper.errors import ConfigError
from skinpamper.runfolder import FORMAT_VERSION, RunFolder, RunState
from skinpamper.runfolder.files import CALIBRATION, CONFIG, METRICS, RUN_INFO, STATE

FIXTURES = Path(__file__).parents[1] / "fixtures"
TODAY = FIXTURES / "run_main_9132af7"


@pytest.fixture
def run(tmp_path: Path) -> RunFolder:
    """A copy of a finished run saved by main at 9132af7 (format 0), made current by a run.json."""
    folder = RunFolder(shutil.copytree(TODAY, tmp_path / "run"))
    folder.write(RUN_INFO, {"format_version": FORMAT_VERSION, "written_by": "test"})
    return folder


def test_a_new_run_records_the_current_format(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run")
    saved = json.loads(run.file(RUN_INFO).read_text())
    assert saved == {"format_version": FORMAT_VERSION, "written_by": f"skinpamper {__version__}"}
    assert run.format_version() == FORMAT_VERSION
    with pytest.raises(ConfigError, match="already holds a run"):
        RunFolder.create(tmp_path / "run")  # run.json alone marks a run


def test_a_run_from_a_newer_skinpamper_is_refused(run: RunFolder) -> None:
    run.file(RUN_INFO).write_text(json.dumps({"format_version": FORMAT_VERSION + 1, "written_by": "x"}))
    with pytest.raises(
        ConfigError, match=rf"run.json: format_version {FORMAT_VERSION + 1} is newer .* upgrade"
    ):
        run.metrics()


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        (STATE, {"epoch": True}, r"state.json: damaged \(epoch: input should be a valid integer, got True\)"),
        (STATE, {"surprise": 1}, r"state.json: damaged \(surprise: unknown key, got 1\)"),
        (STATE, {"best_score": float("nan")}, r"best_score: input should be a finite number"),
        (CALIBRATION, {"temperature": "1.5"}, r"calibration.json: damaged \(temperature: input should be"),
        (CALIBRATION, {"temperature": 0.0}, r"temperature: input should be greater than 0"),
        (CONFIG, {"image_size": 28.0}, r"config.json: damaged \(image_size: input should be a valid integer"),
        (CONFIG, {"fit": "stretch"}, r"fit: input should be 'squash'"),
        (METRICS, {"val": {"n": 8}}, r"metrics.json: damaged \(val.accuracy: field required; val.balanced"),
    ],
)
def test_a_wrong_field_is_one_line_naming_the_file_and_the_field(
    run: RunFolder, name: str, change: dict, message: str
) -> None:
    saved = json.loads(run.file(name).read_text())
    run.file(name).write_text(json.dumps({**saved, **change}))
    with pytest.raises(ConfigError, match=message) as caught:
        run.require(name)
    assert "\n" not in str(caught.value) and str(caught.value).endswith("restore it or train the run again")


def test_metrics_name_the_nested_field(run: RunFolder) -> None:
    metrics = run.metrics()
    metrics["with_metadata"]["test"]["per_class_recall"] = [0.5] * 7
    run.file(METRICS).write_text(json.dumps(metrics))
    with pytest.raises(
        ConfigError, match=r"with_metadata.test.per_class_recall: input should be a valid dict"
    ):
        run.metrics()


def test_what_is_written_is_checked_first(run: RunFolder) -> None:
    before = run.file(CALIBRATION).read_bytes()
    with pytest.raises(
        ConfigError, match=r"calibration.json: damaged \(temperature: input should be greater"
    ):
        run.write_calibration({"temperature": -1.0})
    assert run.file(CALIBRATION).read_bytes() == before


def test_state_round_trips(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run")
    assert run.state() == RunState()  # no epoch finished yet
    state = RunState(epoch=3, best_epoch=2, best_score=0.5, seed_states=((1, 2), (3, 4)))
    run.write_state(state)
    assert run.state() == state


def test_absent_optional_files_read_as_absent(run: RunFolder) -> None:
    for name in (CALIBRATION, "abstention.json", "metadata_model.json", "members.json"):
        run.file(name).unlink(missing_ok=True)
    assert run.temperature() is None and run.abstention() is None and run.metadata_model() is None
    assert run.members() == []
    run.file(METRICS).unlink()
    assert run.read(METRICS) is None
    with pytest.raises(ConfigError, match=r"metrics.json: missing from the run folder$"):
        run.metrics()


def test_reading_a_run_and_its_model_card_needs_no_keras() -> None:
    code = f"""
import sys
from skinpamper.runfolder import RunFolder
from skinpamper.reports.model_card import model_card
run = RunFolder.open({str(TODAY)!r})
run.metrics(), run.state(), run.history(), run.abstention(), run.metadata_model(), run.environment()
assert "Model card" in model_card(run.path)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("keras", "tensorflow"))
loaded += sorted(m for m in sys.modules if m.startswith("skinpamper.training"))
print(loaded)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
