"""The package's folders follow the data flow, and imports only run downward (design.md).

files -> data -> models -> scoring -> runfolder -> training -> evaluation -> reports -> serving ->
workflows -> api -> cli: a module may import from its own stage or any stage before it, never after, so
each layer can be read, tested and reused without the ones above it. Imports inside functions count too.
`runfolder` sits below `training` so that the reports, the API and the ONNX service read a run without
Keras.

`workflows` is the one place each job (train, resume, ensemble, evaluate) is orchestrated. `api` (the
notebook API) and `cli` are front ends over it: they parse, show progress and render, and reach the
modules a workflow puts together only through it, so the two doors cannot do a job two ways.
The package root (`__init__.py`) is the ground floor, except that its `__getattr__` imports `api` on
first use of an API name (`skinpamper.train`): the front door of the package, reached lazily.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import skinpamper

PACKAGE = Path(skinpamper.__file__).parent
# The ground floor (modules directly in the package) comes first; then the stages in flow order.
STAGES = (
    "",
    "data",
    "models",
    "scoring",
    "runfolder",
    "training",
    "evaluation",
    "reports",
    "serving",
    "workflows",
    "api",
    "cli",
)
GROUND = {"errors", "classes", "paths", "atomic", "locks", "progress", "imaging"}


def _stage(module: str) -> int:
    """Stage index of a dotted `skinpamper...` module name (the package root itself is the ground)."""
    parts = module.split(".")[1:]
    # Ground-floor modules, and names the package root defines (__version__, NOT_A_DIAGNOSIS).
    return STAGES.index(parts[0]) if parts and parts[0] in STAGES else 0


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def _imports(path: Path, typing_too: bool = True) -> list[tuple[int, str]]:
    """(line, module) of every skinpamper import in the file, at any depth; without those under
    `if TYPE_CHECKING:` when not `typing_too` (a name for an annotation runs nothing)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = set()
    for block in ast.walk(tree):
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING" and not typing_too:
            typing_only |= {id(node) for statement in block.body for node in ast.walk(statement)}
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("skinpamper"):
            names = [node.module] if node.module != "skinpamper" else []
            names += [f"skinpamper.{a.name}" for a in node.names if node.module == "skinpamper"]
            found += [(node.lineno, name) for name in names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("skinpamper.")]
    return found


# The entry point calls the CLI; the package root has its own rule (test_package_root_imports_...).
ROOT = {PACKAGE / "__main__.py", PACKAGE / "__init__.py"}
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p not in ROOT)


def test_every_top_level_module_is_ground_floor_or_a_stage() -> None:
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert top == GROUND
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(STAGES[1:])


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_downward(path: Path) -> None:
    module = _module_name(path)
    own = _stage(module)
    upward = [
        f"line {line}: {name}"
        for line, name in _imports(path)
        if name not in ("skinpamper",) and _stage(name) > own
    ]
    assert not upward, f"{module} imports from a later stage: {upward}"


def test_ground_floor_imports_nothing_of_the_stages() -> None:
    for path in set(PACKAGE.glob("*.py")) - ROOT:
        stages = [name for _, name in _imports(path) if _stage(name) > 0]
        assert not stages, f"{path.name} imports {stages}"


def test_package_root_imports_only_the_api_and_only_lazily() -> None:
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    top_level = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    assert not [n for n in top_level if "skinpamper" in ast.dump(n)], "imports a stage at import time"
    stages = {name for _, name in _imports(PACKAGE / "__init__.py")}
    assert stages == {"skinpamper.api"}


# What a workflow puts together: a front end that imported one of these could do the job its own way.
ORCHESTRATED = {
    "skinpamper.training.train": "train_run / resume_run",
    "skinpamper.training.ensemble": "train_run / ensemble_run",
    "skinpamper.evaluation.evaluate": "evaluate_run",
    "skinpamper.reports.run_report": "train_run / resume_run / ensemble_run (they write the report)",
    "skinpamper.reports.evaluation_report": "evaluate_run (it writes the report)",
    "skinpamper.locks": "the workflows (they hold the output folder)",
}
FRONT_ENDS = sorted(p for stage in ("api", "cli") for p in (PACKAGE / stage).rglob("*.py"))


@pytest.mark.parametrize("path", FRONT_ENDS, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_front_ends_reach_training_and_evaluation_through_the_workflows(path: Path) -> None:
    reached = [
        f"line {line}: {name} (use skinpamper.workflows: {ORCHESTRATED[name]})"
        for line, name in _imports(path, typing_too=False)
        if name in ORCHESTRATED
    ]
    assert not reached, f"{_module_name(path)} orchestrates a job itself: {reached}"


def test_the_layer_rule_sees_an_orchestrating_import(tmp_path: Path) -> None:
    """The rule reads imports inside functions, and lets names for annotations through."""
    module = tmp_path / "front.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from skinpamper.evaluation.evaluate import Evaluation\n"
        "def go():\n    from skinpamper.training.train import train\n"
    )
    assert _imports(module, typing_too=False) == [(5, "skinpamper.training.train")]
