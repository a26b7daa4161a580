"""Atomic file writes: write a uniquely named temporary file beside the target, then rename over it.

Readers (and a run resumed after `kill -9`) see either the old file or the new one, never half of one.
A temporary's name says which process on which machine writes it (`.last.<host>-<pid>-<random>.tmp.keras`),
so one left by a killed process can be told from one still being written, and swept.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

# .{stem}.{host}-{pid}-{random}.tmp{suffix}; names without host and pid come from earlier versions.
_TEMPORARY = re.compile(r"^\..+?\.(?:(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-)?[a-z0-9_]{8}\.tmp(?:\.\w+)?$")
# A temporary whose writer cannot be checked (another machine, an earlier version) is stale after this.
UNCHECKABLE_AFTER = 24 * 3600  # seconds: far longer than any one file takes to write


@cache
def _umask() -> int:
    """The process umask, read once (reading it means setting it, so only once, before any threads)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@cache
def host_id() -> str:
    """This machine, as 8 hex digits: enough to tell machines apart, without writing its name."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def replace_into(
    path: Path, write: Callable[[Path], None], before_rename: Callable[[Path], None] | None = None
) -> None:
    """Call `write(temporary path)`, then rename it over `path`; the temporary keeps `path`'s suffix.

    mkstemp makes the temporary owner-only (0600); it gets the permissions a plain open() would give
    (0666 less the umask), so a run folder can be shared or served by another user like any file.
    The file is flushed to disk before the rename and the folder after it: otherwise a power cut can
    leave the new name pointing at an empty file. `before_rename(temporary)` runs last before the
    rename, for a caller that must record which file is about to take the name.
    """
    prefix = f".{path.stem}.{host_id()}-{os.getpid()}-"
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=f".tmp{path.suffix}")
    os.close(fd)
    temporary = Path(name)
    try:
        write(temporary)
        temporary.chmod(0o666 & ~_umask())
        _fsync(temporary)
        if before_rename is not None:
            before_rename(temporary)
        temporary.replace(path)
        _fsync(path.parent)
    finally:
        temporary.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    """Flush a file's data, or a folder's entries, to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    replace_into(path, lambda p: p.write_bytes(data))


def write_text_atomic(path: Path, text: str) -> None:
    replace_into(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists all the same
        pass
    return True


def sweep_temporaries(folder: Path, stem: str = "*") -> list[Path]:
    """Delete the temporaries in `folder` that no running process will finish; returns them.

    A temporary is left behind when its writer was killed mid-write. One written on this machine is
    stale as soon as its process is gone; one from another machine sharing the folder, or from a
    version that did not name its writer, once it is a day old. Files that cannot be deleted (a
    read-only folder) are left as they are: sweeping must never stop a reader. `stem` limits the
    sweep to the temporaries of one file's name (a user's folder holding an output).
    """
    swept = []
    for path in folder.glob(f".{stem}.*.tmp*"):
        match = _TEMPORARY.match(path.name)
        if match is None or not path.is_file():
            continue
        if match["host"] == host_id():
            stale = not _running(int(match["pid"]))
        else:
            try:
                stale = time.time() - path.stat().st_mtime > UNCHECKABLE_AFTER
            except OSError:
                continue
        if stale:
            try:
                path.unlink()
            except OSError:
                continue
            swept.append(path)
    return swept
