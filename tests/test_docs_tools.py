"""The site's own tools: dataclass fields documented from their comments (scripts/griffe_comments.py) and
the synthetic Kaggle folder the tutorial page runs on (scripts/docs_notebook.py)."""

from __future__ import annotations

import importlib.util
from dataclasses import fields
from pathlib import Path

import griffe
import pytest

from skinpamper.data.dataset import Dataset
from skinpamper.data.load import load_dataset
from skinpamper.data.splits import Split
from skinpamper.serving.predict import Prediction
from skinpamper.training.config import AugmentConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
EXTENSIONS = griffe.load_extensions(str(ROOT / "scripts" / "griffe_comments.py"))


def _documented(module: str, cls: type) -> dict[str, str | None]:
    loaded = griffe.load(module, search_paths=[str(ROOT / "src")], extensions=EXTENSIONS)
    members = loaded[cls.__name__].members
    return {f.name: (members[f.name].docstring or griffe.Docstring("")).value or None for f in fields(cls)}


def test_a_fields_trailing_comment_then_the_block_above_it_become_its_docs() -> None:
    docs = _documented("skinpamper.training.config", TrainConfig)
    assert docs["epochs"] == "as the original."
    summary, reason = docs["ood_keep"].split("\n\n")
    assert summary == "share of validation images the out-of-distribution threshold accepts."
    assert reason.startswith("Abstention (skinpamper.scoring.abstention), fitted on the validation split")


def test_every_field_users_read_is_documented() -> None:
    for module, cls in (
        ("skinpamper.training.config", TrainConfig),
        ("skinpamper.training.config", AugmentConfig),
        ("skinpamper.data.dataset", Dataset),
        ("skinpamper.data.splits", Split),
        ("skinpamper.serving.predict", Prediction),
    ):
        undocumented = [name for name, doc in _documented(module, cls).items() if doc is None]
        assert not undocumented, f"{cls.__name__}: give these fields a comment: {undocumented}"


def test_the_sites_notebook_data_reads_as_a_kaggle_folder(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("docs_notebook", ROOT / "scripts" / "docs_notebook.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    count = hook.write_kaggle_folder(tmp_path / "ham")
    dataset = load_dataset(tmp_path / "ham")
    assert len(dataset) == count and dataset.image_size == (28, 28) and dataset.has_lesion_ids
    assert dataset.class_counts().to_dict() == pytest.approx(hook.COUNTS, abs=1)  # a last pair adds one
    assert dataset.meta["lesion_id"].nunique() < count  # some lesions photographed twice, as in HAM10000
    assert len(list((tmp_path / "ham").glob("HAM10000_images_part_*/*.jpg"))) == count
