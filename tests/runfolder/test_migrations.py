"""A run of each older format reads as the current one: fields added since take the value their
absence meant, and the same gaps in a current-format run are damage."""

from __future__ import annotations

import json
import math
import shutil
import typing
from pathlib import Path

import pytest

from skinpamper.errors import ConfigError
from skinpamper.runfolder import FORMAT_VERSION, RunFolder
from skinpamper.runfolder.files import CONFIG, ENVIRONMENT, HISTORY, RUN_INFO
from skinpamper.runfolder.migrations import FORMATS, MIGRATIONS
from skinpamper.runfolder.schemas import EnvironmentRecord

TODAY = Path(__file__).parents[1] / "fixtures" / "run_main_9132af7"


def _strip(run: RunFolder) -> None:
    """Make the run as older format-0 runs were saved: before colour constancy, the precision setting
    and the training-split balanced accuracy column existed."""
    config = json.loads(run.file(CONFIG).read_text())
    del config["colour_constancy"]
    run.file(CONFIG).write_text(json.dumps(config))
    environment = json.loads(run.file(ENVIRONMENT).read_text())
    del environment["precision"]
    run.file(ENVIRONMENT).write_text(json.dumps(environment))
    lines = run.file(HISTORY).read_text().splitlines()
    dropped = lines[0].split(",").index("balanced_accuracy")
    rows = [",".join(c for i, c in enumerate(line.split(",")) if i != dropped) for line in lines]
    run.file(HISTORY).write_text("\n".join(rows) + "\n")


@pytest.fixture
def old(tmp_path: Path) -> RunFolder:
    run = RunFolder(shutil.copytree(TODAY, tmp_path / "run"))
    _strip(run)
    return run


def test_every_format_has_a_description_and_a_way_forward() -> None:
    assert sorted(FORMATS) == list(range(FORMAT_VERSION + 1))
    assert sorted(MIGRATIONS) == list(range(FORMAT_VERSION))


def test_a_format_0_run_gets_what_its_missing_fields_meant(old: RunFolder) -> None:
    assert old.format_version() == 0
    assert old.config_record()["colour_constancy"] is False  # no such layer in its model
    assert old.training_precision() == "float32"  # resume loads last.keras in float32
    history = old.history()
    assert len(history) == 2 and all(math.isnan(row["balanced_accuracy"]) for row in history)
    assert history[0]["val_balanced_accuracy"] == pytest.approx(0.142857, abs=1e-6)


def test_the_same_gaps_in_a_current_run_are_damage(old: RunFolder) -> None:
    old.write(RUN_INFO, {"format_version": FORMAT_VERSION, "written_by": "test"})
    with pytest.raises(ConfigError, match=r"config.json: damaged \(colour_constancy: field required\)"):
        old.config_record()
    with pytest.raises(ConfigError, match=r"environment.json: damaged \(precision: field required\)"):
        old.training_precision()
    with pytest.raises(ConfigError, match=r"history.csv: damaged \(no column balanced_accuracy\)"):
        old.history()


def test_migrations_leave_the_files_on_disk_as_written(old: RunFolder) -> None:
    before = {p.name: p.read_bytes() for p in old.path.iterdir()}
    old.config_record(), old.history(), old.environment()
    assert {p.name: p.read_bytes() for p in old.path.iterdir()} == before


def test_the_precisions_a_run_may_record_are_those_training_knows() -> None:
    from skinpamper.training.precision import POLICIES

    field = EnvironmentRecord.model_fields["precision"].annotation
    assert set(typing.get_args(field)) == set(POLICIES)
