"""`skinpamper train` and `skinpamper.train` plan and guard a run the same way: one default folder,
one member count, one lock on the folder."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import skinpamper
from skinpamper.cli import main
from skinpamper.errors import BusyError, ConfigError
from skinpamper.locks import OutputLock, lock_path
from skinpamper.training.config import default_members
from skinpamper.workflows.training import plan_run
from synthetic import tiny_dataset


def test_a_plan_resolves_folder_members_and_settings_once() -> None:
    plan = plan_run(model="compact_cnn", epochs=2)
    assert re.fullmatch(r"runs/compact_cnn-\d{8}-\d{6}", plan.folder.as_posix()), plan.folder
    assert plan.members == default_members("compact_cnn") and plan.config.epochs == 2
    assert plan.reading("/data/ham").config.data_path == "/data/ham"
    with pytest.raises(ConfigError, match="members must be at least 1, got 0"):
        plan_run(members=0)


def test_a_folder_in_use_is_refused_at_either_door_before_anything_is_written(
    ham_folder: Path, tmp_path: Path
) -> None:
    """Python once trained into a folder another writer held; now both doors take the same lock."""
    out = tmp_path / "run"
    out.mkdir()
    with OutputLock(out):
        with pytest.raises(BusyError, match=f"in use by pid {os.getpid()}"):
            skinpamper.train(
                tiny_dataset(), model="compact_cnn", epochs=1, members=1, out=out, progress=False
            )
        args = [
            "train",
            "--data",
            str(ham_folder),
            "--model",
            "compact_cnn",
            "--members",
            "1",
            "--out",
            str(out),
        ]
        result = CliRunner().invoke(main, args)
    assert result.output == f"Error: {out}: in use by pid {os.getpid()}\n"
    assert list(out.iterdir()) == [] and not lock_path(out).exists()
