"""summarize() and format_summary() against hand-counted values of a six-image dataset."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from skinpamper.classes import CODES
from skinpamper.data.dataset import Dataset, empty_meta
from skinpamper.data.summary import Table, format_summary, format_table, summarize


def make_dataset() -> Dataset:
    """akiec x2, nv x3, mel x1; lesions L1 (2 images), L2 (1), L3 (2), L4 (1); one gap per column."""
    meta = pd.DataFrame(
        {
            "image_id": [f"i{i}" for i in range(6)],
            "lesion_id": ["L1", "L1", "L2", "L3", "L3", "L4"],
            "dx_type": ["histo", "histo", "follow_up", "follow_up", None, "histo"],
            "age": [70.0, 60.0, 30.0, np.nan, 40.0, 55.0],
            "sex": ["male", "female", "male", None, "female", "male"],
            "localization": ["back", "back", "face", "face", np.nan, "trunk"],
        }
    )
    images = np.zeros((6, 8, 8, 3), dtype=np.uint8)
    return Dataset(images, np.array([0, 0, 5, 5, 5, 4]), meta, source="fixture")


@pytest.fixture
def summary():
    return summarize(make_dataset())


def test_counts_images_lesions_and_classes(summary) -> None:
    assert summary.images == 6
    assert summary.image_size == (8, 8)
    assert summary.lesions == 4
    assert summary.images_per_lesion.to_dict() == {1: 2, 2: 2}
    assert list(summary.classes.index) == list(CODES)
    assert summary.classes["images"].to_dict() == {
        "akiec": 2,
        "bcc": 0,
        "bkl": 0,
        "df": 0,
        "mel": 1,
        "nv": 3,
        "vasc": 0,
    }
    assert summary.classes.loc["nv", "share"] == pytest.approx(50.0)


def test_age_summary_skips_missing_ages(summary) -> None:
    assert summary.age.to_dict() == {"min": 30.0, "median": 55.0, "mean": 51.0, "max": 70.0}
    assert summary.age_by_class["akiec"] == 65.0
    assert summary.age_by_class["nv"] == 35.0
    assert summary.age_by_class["mel"] == 55.0
    assert math.isnan(summary.age_by_class["df"])


def test_metadata_counts_and_missing_values(summary) -> None:
    assert summary.sex.to_dict() == {"male": 3, "female": 2}
    assert summary.localization.to_dict() == {"back": 2, "face": 2, "trunk": 1}
    assert summary.dx_type.to_dict() == {"histo": 3, "follow_up": 2}
    assert summary.missing.to_dict() == {
        "image_id": 0,
        "lesion_id": 0,
        "dx_type": 1,
        "age": 1,
        "sex": 1,
        "localization": 1,
    }


def test_format_summary_prints_every_table(summary) -> None:
    text = format_summary(summary)
    for title in ("Overview", "Classes", "Images per lesion", "Age (years)", "Sex", "Localization"):
        assert f"\n{title}\n" in f"\n{text}"
    assert re.search(r"\n  nv +melanocytic nevi +3 +50\.0% +35\n", text)
    assert re.search(r"\n  df +dermatofibroma +0 +0\.0% +n/a\n", text)
    assert re.search(r"\n  \(missing\) +1 +16\.7%\n", text)
    assert re.search(r"\n  histo +histopathology +3 +50\.0%\n", text)
    assert "4 (1.50 images per lesion on average)" in text


def test_without_lesion_ids_or_metadata() -> None:
    dataset = Dataset(np.zeros((3, 4, 4, 3), np.uint8), np.array([1, 1, 6]), empty_meta(3), "bare")
    summary = summarize(dataset)
    assert summary.lesions is None
    assert summary.images_per_lesion is None
    assert summary.missing["age"] == 3
    assert summary.sex.empty
    text = format_summary(summary)
    assert "lesions     unknown" in text
    assert "Images per lesion" not in text
    assert re.search(r"\n  n/a +n/a +n/a +n/a +3\n", text)


def test_format_table_aligns_columns() -> None:
    table = Table("T", ("name", "n"), (("a", "1"), ("long", "100")), "lr", "why")
    assert format_table(table) == "T\n  name    n\n  ----  ---\n  a       1\n  long  100\n  why"
