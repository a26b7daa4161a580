from pathlib import Path

import pytest

from skinpamper.atomic import replace_into, write_json_atomic


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
