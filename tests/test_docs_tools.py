"""The API reference documents dataclass fields from their comments (scripts/griffe_comments.py)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import griffe

from skinpamper.data.dataset import Dataset
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
