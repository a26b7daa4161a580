"""Format versions of a run folder, and how a run of each older format is read as the current one.

A new run records FORMAT_VERSION in run.json. A run without run.json is format 0: every run saved
before the format was recorded (Skin Pamper 0.1.0 up to commit 9132af7). Each step of MIGRATIONS turns
one file's parsed content (a JSON object, or one row of history.csv) of version v into version v + 1
in memory; the files on disk stay as they were written, so a run keeps opening in the version that
made it. What a migration cannot make (a detector needs the data) stays absent and is read as absent:
`train --resume` on a finished run fits it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from skinpamper.runfolder.files import CONFIG, ENVIRONMENT, HISTORY, HISTORY_COLUMNS

FORMAT_VERSION = 1
# What each format is, as MONAI bundles keep a changelog beside their version.
FORMATS: dict[int, str] = {
    0: (
        "no run.json. Depending on its age a run may lack colour_constancy in config.json (before "
        "2026-11-26 no such layer existed), precision in environment.json (before 2026-12-02 training "
        "ran in float32), history.csv's balanced_accuracy column (before 2026-11-26), a relative "
        "data_path (before 2026-12-02), and calibration.json, metadata_model.json, abstention.json "
        "with ood_detector.npz (saved before each existed: uncalibrated, images only, unchecked)"
    ),
    1: "run.json records format_version; every file holds every field of the current schemas",
}

Migration = Callable[[str, dict[str, Any]], dict[str, Any]]


def _from_0(name: str, content: dict[str, Any]) -> dict[str, Any]:
    """Format 0 -> 1: give the fields later versions added the value their absence meant."""
    meant: dict[str, dict[str, Any]] = {
        CONFIG: {"colour_constancy": False},  # no colour-constancy layer in the saved model
        ENVIRONMENT: {"precision": "float32"},  # resume must load last.keras in the precision it ran in
        HISTORY: dict.fromkeys(HISTORY_COLUMNS, math.nan),  # a column not recorded then is unknown
    }
    return {**meant.get(name, {}), **content}


MIGRATIONS: dict[int, Migration] = {0: _from_0}


def migrate(name: str, content: dict[str, Any], version: int) -> dict[str, Any]:
    """`content` of the file `name` from a run of format `version`, as the current format holds it."""
    for step in range(version, FORMAT_VERSION):
        content = MIGRATIONS[step](name, content)
    return content
