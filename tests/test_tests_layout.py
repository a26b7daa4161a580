"""The tests' own layout: fixtures live in conftest.py and are never imported; the helpers tests share
are plain modules (helpers.py and its neighbours) that they import by name."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _conftest_imports(path: Path) -> list[int]:
    """Lines of `path` that import conftest (`from conftest import x`, `import conftest`, at any depth)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            names = [node.module or "", *(alias.name for alias in node.names)]  # `from . import conftest`
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        if any(name.split(".")[-1] == "conftest" for name in names):
            lines.append(node.lineno)
    return sorted(lines)


def test_no_module_imports_from_conftest() -> None:
    """pytest loads conftest.py itself; importing it too makes a second copy of its fixtures and hides
    where a helper lives. Helpers belong in helpers.py."""
    offenders = {
        str(path.relative_to(TESTS)): lines
        for path in sorted(TESTS.rglob("*.py"))
        if (lines := _conftest_imports(path))
    }
    assert offenders == {}


def test_the_check_finds_an_import_from_conftest(tmp_path: Path) -> None:
    module = tmp_path / "test_example.py"
    module.write_text(
        "import os\n\n\ndef f():\n    from conftest import DX\n\n\n"
        "import tests.conftest\nfrom . import conftest\n"
    )
    assert _conftest_imports(module) == [5, 8, 9]
