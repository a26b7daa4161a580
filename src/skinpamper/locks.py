"""One writer per output: an exclusive lock on a file beside the output, held for the writer's life.

Two jobs writing one scores file or one run folder would interleave their parts and epochs and leave
a mix of both; the second one refuses at once instead, naming the process that holds the output. The
lock is the kernel's (fcntl.flock), so a killed writer releases it with its last file descriptor:
there is never a stale lock to clear by hand.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from skinpamper.errors import BusyError


def lock_path(target: Path) -> Path:
    """The lock file of an output file or folder: hidden, beside it."""
    return target.parent / f".{target.name}.lock"


class OutputLock:
    """An exclusive hold on `target`; `release` (or leaving a `with` block) lets the next writer in."""

    def __init__(self, target: str | Path) -> None:
        self.target = Path(target)
        self.path = lock_path(self.target)
        self._fd: int | None = _acquire(self.target, self.path)

    def release(self) -> None:
        """Delete the lock file while still holding it, then let go (safe: see `_acquire`)."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()


def _acquire(target: Path, path: Path) -> int:
    """Lock `path`, created if need be, and write this pid into it; refuse if another process holds it.

    The holder deletes the file as it lets go, so a lock taken on a file that has since been deleted
    (or replaced by another writer's) holds nothing: check that `path` is still the file locked.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise BusyError(f"{target}: in use by pid {holder}") from None
        try:
            current = path.stat()
        except FileNotFoundError:
            current = None
        locked = os.fstat(fd)
        if current is not None and (current.st_dev, current.st_ino) == (locked.st_dev, locked.st_ino):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)
