"""write_explore() publishes every figure and one self-contained page, or nothing at all."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

from skinpamper.data.dataset import Dataset
from skinpamper.reports import explore
from skinpamper.reports.explore import FIGURES, write_explore

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    n = 14
    meta = pd.DataFrame(
        {
            "image_id": [f"i{i}" for i in range(n)],
            "lesion_id": [f"L{i // 2}" for i in range(n)],
            "dx_type": ["histo", "consensus"] * (n // 2),
            "age": [float(5 * i) for i in range(n)],
            "sex": ["male", "female"] * (n // 2),
            "localization": ["back", None] * (n // 2),
        }
    )
    images = np.random.default_rng(0).integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8)
    return Dataset(images, np.arange(n) % 7, meta, source="data/<fixture>.csv")


def test_writes_pngs_and_a_self_contained_page(dataset, tmp_path) -> None:
    page = write_explore(dataset, tmp_path / "out")
    assert page == tmp_path / "out" / "index.html"
    assert sorted(p.name for p in page.parent.iterdir()) == sorted(["index.html", *(f[0] for f in FIGURES)])
    for name, *_ in FIGURES:
        assert (page.parent / name).read_bytes().startswith(PNG_MAGIC)
    html = page.read_text(encoding="utf-8")
    inlined = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(inlined) == len(FIGURES)
    assert all(base64.b64decode(data).startswith(PNG_MAGIC) for data in inlined)
    assert not re.search(r'src="(?!data:)', html)  # nothing loaded from outside the page
    for heading in ("Summary", "Figures"):
        assert f">{heading}</h2>" in html
    for caption in ("Overview", "Classes", "Images per lesion", "Age (years)", "Sex", "Missing values"):
        assert f"<caption>{caption}</caption>" in html
    assert "&lt;fixture&gt;" in html  # values are escaped


def test_replaces_its_files_and_keeps_others(dataset, tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "index.html").write_text("old")
    write_explore(dataset, out)
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "index.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left


def test_no_output_when_the_parent_is_a_file(dataset, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError):
        write_explore(dataset, blocker / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_no_output_when_a_figure_fails(dataset, tmp_path, monkeypatch) -> None:
    def broken(_dataset: Dataset) -> None:
        raise RuntimeError("plot failed")

    monkeypatch.setattr(explore, "FIGURES", (("broken.png", "Broken", "", broken), *FIGURES))
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "index.html").write_text("old")
    for out in (tmp_path / "new", existing):
        with pytest.raises(RuntimeError, match="plot failed"):
            write_explore(dataset, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"]
    assert [p.name for p in existing.iterdir()] == ["index.html"]
    assert (existing / "index.html").read_text() == "old"
