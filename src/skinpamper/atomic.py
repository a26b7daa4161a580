"""Atomic file writes: write a uniquely named temporary file beside the target, then rename over it.

Readers (and a run resumed after `kill -9`) see either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any


@cache
def _umask() -> int:
    """The process umask, read once (reading it means setting it, so only once, before any threads)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def replace_into(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(temporary path)`, then rename it over `path`; the temporary keeps `path`'s suffix.

    mkstemp makes the temporary owner-only (0600); it gets the permissions a plain open() would give
    (0666 less the umask), so a run folder can be shared or served by another user like any file.
    """
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    temporary = Path(name)
    try:
        write(temporary)
        temporary.chmod(0o666 & ~_umask())
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    replace_into(path, lambda p: p.write_bytes(data))


def write_text_atomic(path: Path, text: str) -> None:
    replace_into(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")
