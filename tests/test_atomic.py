import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skinpamper.atomic import UNCHECKABLE_AFTER, host_id, replace_into, sweep_temporaries, write_json_atomic

# Starts an atomic write, says the temporary's name, and never finishes.
SLOW_WRITER = """
import sys, time
from pathlib import Path
from skinpamper.atomic import replace_into

def write(path):
    path.write_bytes(b"half a checkpoint")
    print(path.name, flush=True)
    time.sleep(120)

replace_into(Path(sys.argv[1]), write)
"""


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_json_atomic(target, {"epoch": 1})

    def crash(path: Path) -> None:
        path.write_text('{"epoch": ')  # half-written, then the process "dies"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_into(target, crash)
    assert target.read_text() == '{\n  "epoch": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_temporary_keeps_the_suffix_writers_check(tmp_path: Path) -> None:
    seen = []
    replace_into(tmp_path / "model.keras", lambda p: (seen.append(p.name), p.write_bytes(b"x")))
    assert seen[0].endswith(".keras") and (tmp_path / "model.keras").read_bytes() == b"x"


def test_written_file_gets_the_permissions_of_a_plain_open(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    write_json_atomic(tmp_path / "metrics.json", {})
    assert (tmp_path / "metrics.json").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_a_killed_writers_temporary_is_swept_and_a_live_ones_kept(tmp_path: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(tmp_path / "last.keras")], stdout=subprocess.PIPE, text=True
    )
    temporary = tmp_path / writer.stdout.readline().strip()  # half written, its process still running
    assert temporary.name.startswith(f".last.{host_id()}-{writer.pid}-") and temporary.exists()
    assert sweep_temporaries(tmp_path) == [] and temporary.exists()
    writer.send_signal(signal.SIGKILL)  # as kill -9 during a checkpoint save
    writer.wait()
    assert temporary.exists()
    assert sweep_temporaries(tmp_path) == [temporary] and not temporary.exists()


def test_a_temporary_whose_writer_cannot_be_checked_is_swept_once_a_day_old(tmp_path: Path) -> None:
    elsewhere = tmp_path / ".state.00000000-1-abcd1234.tmp.json"  # another machine sharing the folder
    earlier = tmp_path / ".metrics.abcd1234.tmp.json"  # named by a version that did not record its writer
    kept = tmp_path / ".hidden.json"  # not a temporary at all
    for path in (elsewhere, earlier, kept):
        path.write_text("{")
    assert sweep_temporaries(tmp_path) == []
    day_ago = time.time() - UNCHECKABLE_AFTER - 60
    for path in (elsewhere, earlier, kept):
        os.utime(path, (day_ago, day_ago))
    assert sorted(sweep_temporaries(tmp_path)) == sorted([elsewhere, earlier]) and kept.exists()
