"""Atomic file writes: write a uniquely named temporary file beside the target, then rename over it.

Readers (and a run resumed after `kill -9`) see either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def replace_into(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(temporary path)`, then rename it over `path`; the temporary keeps `path`'s suffix."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    temporary = Path(name)
    try:
        write(temporary)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    replace_into(path, lambda p: p.write_bytes(data))


def write_text_atomic(path: Path, text: str) -> None:
    replace_into(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")
