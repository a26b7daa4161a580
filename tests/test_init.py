"""`import skinpamper` stays light: the notebook API arrives on first use, and data work never loads Keras."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import skinpamper
import skinpamper.api

HEAVY = ("keras", "tensorflow", "torch", "jax", "onnxruntime")

SCRIPT = """
import sys
import skinpamper
heavy = {heavy!r}
loaded = lambda: sorted(m for m in sys.modules if m.split(".")[0] in heavy)
assert loaded() == [], ("import skinpamper", loaded())
assert "skinpamper.api" not in sys.modules, "the API was imported eagerly"
dataset = skinpamper.load_dataset({folder!r}, image_size=8)
skinpamper.plot_pixel_rows(dataset, per_class=2)
skinpamper.plot_age_by_class(dataset)
parts = skinpamper.split(dataset)
assert skinpamper.Predictor.load and skinpamper.train and skinpamper.evaluate
assert loaded() == [], ("loading, splitting and plotting data", loaded())
print("light")
"""


def test_importing_and_loading_data_never_imports_keras(ham_folder: Path, tmp_path: Path) -> None:
    script = SCRIPT.format(heavy=HEAVY, folder=str(ham_folder))
    env = {"SKINPAMPER_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "light"


def test_the_top_level_names_are_the_apis() -> None:
    public = {name for name, value in vars(skinpamper.api).items() if not name.startswith("_")}
    assert public - {"datasets", "evaluations", "runs"} == set(skinpamper.API)
    for name in skinpamper.API:
        assert getattr(skinpamper, name) is getattr(skinpamper.api, name)
    assert set(skinpamper.API) <= set(dir(skinpamper))
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        skinpamper.trian  # noqa: B018


def test_editors_and_star_imports_see_the_lazy_names() -> None:
    assert sorted(skinpamper.api.__all__) == sorted(skinpamper.API)
    assert set(skinpamper.__all__) == {"NOT_A_DIAGNOSIS", "__version__", *skinpamper.API}
    # What type checkers read: the imports under `if TYPE_CHECKING:` name exactly the lazy ones.
    tree = ast.parse(Path(skinpamper.__file__).read_text(encoding="utf-8"))
    (block,) = [
        node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    seen = {alias.name for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert seen == set(skinpamper.API)
    namespace: dict[str, object] = {}
    exec("from skinpamper import *", namespace)
    assert namespace["train"] is skinpamper.api.train and namespace["NOT_A_DIAGNOSIS"]
