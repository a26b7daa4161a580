"""Only the run-folder module names a run's files, and the documentation lists them from its table.

Any other module that opens a run's file by its name (`path / "metrics.json"`) would read it without
the schema and the migrations, so the AST of every module outside `skinpamper/runfolder/` is searched
for those names, as test_layout.py searches it for imports.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

import skinpamper
from skinpamper.runfolder import files
from skinpamper.runfolder.files import RUN_FOLDER_FILES, run_folder_table

PACKAGE = Path(skinpamper.__file__).parent
ROOT = PACKAGE.parents[1]
NAMES = {f.name for f in RUN_FOLDER_FILES}
# An evaluation folder's own metrics.json, named once beside the code that writes it.
ALLOWED = {("evaluation/outputs.py", "metrics.json")}
OUTSIDE = sorted(p for p in PACKAGE.rglob("*.py") if p.parent.name != "runfolder")


def named_files(source: str) -> list[tuple[int, str]]:
    """(line, name) of every string that is a run file's name or a path ending in one."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and " " not in node.value:
            tail = node.value.replace("\\", "/").rsplit("/", 1)[-1]
            if tail in NAMES:
                found.append((node.lineno, tail))
    return found


@pytest.mark.parametrize("path", OUTSIDE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_outside_the_run_folder_names_a_runs_files(path: Path) -> None:
    module = str(path.relative_to(PACKAGE))
    named = [
        f"line {line}: {name!r}"
        for line, name in named_files(path.read_text(encoding="utf-8"))
        if (module, name) not in ALLOWED
    ]
    assert not named, f"{module} opens run files by name (use skinpamper.runfolder): {named}"


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ('run_dir / "metrics.json"', [(1, "metrics.json")]),
        ('Path(f"{run}/state.json")', [(1, "state.json")]),
        ('open("runs\\\\seed\\\\model.keras")', [(1, "model.keras")]),
        ('"""Reads metrics.json and state.json."""', []),  # prose about the files opens nothing
        ('path / "predictions.csv"', []),
    ],
)
def test_the_search_finds_a_name_in_any_spelling_of_a_path(source: str, found: list) -> None:
    assert named_files(source) == found


def test_every_file_name_the_module_defines_is_in_the_table() -> None:
    defined = {
        value
        for name, value in vars(files).items()
        if name.isupper() and isinstance(value, str) and "." in value
    }
    assert defined == NAMES
    assert len(RUN_FOLDER_FILES) == len(NAMES)  # each once
    assert all(f.holds and "\n" not in f.holds for f in RUN_FOLDER_FILES)


def _docs_hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "scripts" / "docs_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_training_page_lists_the_files_from_the_table() -> None:
    hooks = _docs_hooks()
    source = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    marker = "<!-- run-folder-files -->"
    assert hooks.GENERATED[marker] is run_folder_table and source.count(marker) == 1
    page = SimpleNamespace(file=SimpleNamespace(src_uri="training.md"))
    rendered = hooks.on_page_markdown(source, page=page)
    assert run_folder_table() in rendered and marker not in rendered
    for entry in RUN_FOLDER_FILES:
        assert f"| `{entry.name}` | {entry.holds} |" in rendered
    # No hand-written list beside the generated one: the page names calibration.json's content once.
    assert source.count("ECE/Brier before and after") == 0
