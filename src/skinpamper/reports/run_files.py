"""Reading a run folder's files for the pages: absent files are None, damaged ones a one-line error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from skinpamper.errors import SkinPamperError


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when the file is absent."""
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SkinPamperError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise SkinPamperError(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


def read_history(path: Path) -> pd.DataFrame | None:
    """Per-epoch metrics, or None when the file is absent or has no epochs."""
    if not path.is_file():
        return None
    try:
        history = pd.read_csv(path, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        return None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SkinPamperError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from exc
    return history if len(history) else None
