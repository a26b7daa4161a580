"""The tutorial notebooks run top to bottom on the real data, and are committed without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from helpers import REAL_DATA

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_is_a_quickstart_notebook() -> None:
    assert [p.name for p in NOTEBOOKS] == ["quickstart.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [
        i
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} hold outputs or execution counts; clear them before committing"
    )


@pytest.mark.slow
@pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"real HAM10000 data not found at {REAL_DATA}")
def test_quickstart_runs_top_to_bottom_on_the_real_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbclient import NotebookClient

    monkeypatch.setenv("SKINPAMPER_DATA", str(REAL_DATA))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    notebook = nbformat.read(NOTEBOOKS[0], as_version=4)
    # In a scratch folder: the run folder lands in its runs/, not in the repository.
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    figures = [o for o in outputs if o.get("data", {}).get("image/png")]
    assert len(figures) == 7  # pixel rows, classes, ages, curves, confusion matrix, recall, Grad-CAM
    assert len(list((tmp_path / "runs").glob("*/report.html"))) == 1
    table = next(
        o["data"]["text/plain"] for o in outputs if "Grace Hopper" in o.get("data", {}).get("text/plain", "")
    )
    (portrait,) = [line for line in table.splitlines() if "Grace Hopper" in line]
    assert "out_of_distribution" in portrait  # the portrait gets no answer
