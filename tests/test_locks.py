"""One writer per output: a second writer is refused while the first lives, and admitted after."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skinpamper.errors import BusyError
from skinpamper.locks import OutputLock, lock_path


def test_a_second_writer_is_refused_until_the_first_lets_go(tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    with OutputLock(out), pytest.raises(BusyError, match=f"^{out}: in use by pid {os.getpid()}$"):
        OutputLock(out)
    with OutputLock(out):
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_killed_writer_leaves_no_lock_behind(tmp_path: Path) -> None:
    out = tmp_path / "run"
    holder = (
        "import sys, time; from skinpamper.locks import OutputLock; OutputLock(sys.argv[1]); time.sleep(60)"
    )
    process = subprocess.Popen([sys.executable, "-c", holder, str(out)])
    try:
        deadline = time.monotonic() + 30
        while not (lock_path(out).exists() and lock_path(out).read_text()) and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(BusyError, match=f"in use by pid {process.pid}$"):
            OutputLock(out)
    finally:
        process.kill()
        process.wait()
    with OutputLock(out):  # the kernel let go with the process: nothing stale to clear
        pass
