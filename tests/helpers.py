"""Plain helpers the tests import (`from helpers import ...`): tiny HAM10000-like data in every real format.

Fixtures live in conftest.py, which is never imported; helpers for one area live beside it in
synthetic.py (training), service_helpers.py (serving), archive.py and fuzz_corpus.py (image files).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skinpamper.classes import CODES, HMNIST_CODES

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ham10000"
# Twelve images per class; the first lesion of each class photographed twice: 84 images, 77 lesions.
DX = [code for code in CODES for _ in range(12)]
LESIONS = [f"HAM_{i // 12:07d}" if i % 12 < 2 else f"HAM_{i:07d}x" for i in range(len(DX))]
DATA_USER = "alice"  # a user name no published artefact may show: the shared run's data lies in her home


def make_images(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Distinct random RGB images (uint8)."""
    return np.random.default_rng(seed).integers(0, 256, (n, height, width, 3), dtype=np.uint8)


def write_metadata(folder: Path, dx: list[str] = DX, lesions: list[str] = LESIONS) -> pd.DataFrame:
    """HAM10000_metadata.csv for `dx` (one row per image), with some ages and sexes missing."""
    meta = pd.DataFrame(
        {
            "lesion_id": lesions,
            "image_id": [f"ISIC_{i:07d}" for i in range(len(dx))],
            "dx": dx,
            "dx_type": ["histo" if i % 2 else "follow_up" for i in range(len(dx))],
            "age": [float(20 + i) if i % 5 else np.nan for i in range(len(dx))],
            "sex": ["male" if i % 3 else "unknown" for i in range(len(dx))],
            "localization": ["back" if i % 2 else "face" for i in range(len(dx))],
        }
    )
    meta.to_csv(folder / "HAM10000_metadata.csv", index=False)
    return meta


def write_hmnist(path: Path, images: np.ndarray, dx: list[str], grey: bool = False) -> None:
    """The Kaggle layout: pixel0000... (RGB interleaved, row-major) then `label` in hmnist codes."""
    pixels = images.mean(axis=3).round().astype(np.uint8) if grey else images
    flat = pixels.reshape(len(images), -1)
    table = pd.DataFrame(flat, columns=[f"pixel{i:04d}" for i in range(flat.shape[1])])
    table["label"] = [HMNIST_CODES.index(code) for code in dx]
    table.to_csv(path, index=False)


def write_ham_folder(folder: Path) -> Path:
    """A Kaggle-like HAM10000 folder: metadata, hmnist 8x8 RGB and L CSVs, 20x15 JPEGs in two parts."""
    folder.mkdir(parents=True)
    write_metadata(folder)
    images = make_images(len(DX), 8, 8)
    write_hmnist(folder / "hmnist_8_8_RGB.csv", images, DX)
    write_hmnist(folder / "hmnist_8_8_L.csv", images, DX, grey=True)
    photos = make_images(len(DX), 15, 20, seed=1)
    for i, photo in enumerate(photos):
        part = folder / ("HAM10000_images_part_1" if i < len(DX) // 2 else "HAM10000_images_part_2")
        part.mkdir(exist_ok=True)
        Image.fromarray(photo).save(part / f"ISIC_{i:07d}.jpg", quality=95)
    return folder


def every_model() -> list[object]:
    """Every registered model as a test parameter. The ImageNet backbones other than the default take
    seconds each to build and step, so their cases are marked slow; the quick set keeps the default
    and the small scratch models."""
    from skinpamper.models import get_model_info, list_models  # imports Keras
    from skinpamper.training.config import DEFAULT_MODEL

    def marks(name: str) -> list[pytest.MarkDecorator]:
        backbone = get_model_info(name).weights is not None and name != DEFAULT_MODEL
        return [pytest.mark.slow] if backbone else []

    return [pytest.param(name, marks=marks(name)) for name in list_models()]
