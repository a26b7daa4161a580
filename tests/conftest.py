"""Tiny fixtures in every real HAM10000 format, made by the tests themselves (no network, no shared data)."""

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


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep caches and downloads of every test out of the user's home."""
    monkeypatch.setenv("SKINPAMPER_HOME", str(tmp_path_factory.mktemp("home")))


def make_images(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Distinct random RGB images (uint8)."""
    return np.random.default_rng(seed).integers(0, 256, (n, height, width, 3), dtype=np.uint8)


def write_metadata(folder: Path, dx: list[str] = DX, lesions: list[str] = LESIONS) -> pd.DataFrame:
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
    folder.mkdir()
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


@pytest.fixture
def ham_folder(tmp_path: Path) -> Path:
    """A Kaggle-like HAM10000 folder (see write_ham_folder)."""
    return write_ham_folder(tmp_path / "ham")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run of the default model (compact_cnn, a single member), 28 px, one epoch, on a HAM10000-like
    folder; its data folder stays in place.

    Shared by the whole session because training is the slow part: tests may read it, never change it.
    """
    from click.testing import CliRunner

    from skinpamper.cli import main

    root = tmp_path_factory.mktemp("trained")
    folder = write_ham_folder(root / "ham")
    args = [
        "train",
        "--data",
        folder,
        "--model",
        "compact_cnn",
        "--image-size",
        "28",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--members",
        "1",
    ]
    with pytest.MonkeyPatch.context() as patch:  # the autouse home is per test, this fixture outlives it
        patch.setenv("SKINPAMPER_HOME", str(root / "home"))
        result = CliRunner().invoke(
            main, [*map(str, args), "--out", str(root / "run")], catch_exceptions=False
        )
    assert result.exit_code == 0, result.output
    return root / "run"


@pytest.fixture
def dermamnist_npz(tmp_path: Path) -> Path:
    """A DermaMNIST-like .npz: official train/val/test keys, labels shaped (N, 1) in medmnist order."""
    path = tmp_path / "dermamnist.npz"
    rng = np.random.default_rng(2)
    arrays = {}
    for name, n in (("train", 14), ("val", 7), ("test", 7)):
        arrays[f"{name}_images"] = make_images(n, 28, 28, seed=n)
        arrays[f"{name}_labels"] = (np.arange(n) % 7).reshape(-1, 1).astype(np.uint8)
    rng.shuffle(arrays["train_labels"])
    np.savez(path, **arrays)
    return path


@pytest.fixture
def class_folders(tmp_path: Path) -> Path:
    """Images in sub-folders named by class code, PNG and JPEG, odd sizes."""
    folder = tmp_path / "classes"
    for i, code in enumerate(CODES):
        (folder / code).mkdir(parents=True)
        for j, image in enumerate(make_images(2, 30 + i, 17, seed=i)):
            Image.fromarray(image).save(folder / code / f"{code}_{j}.{'png' if j else 'jpg'}")
    return folder


@pytest.fixture
def labelled_folder(tmp_path: Path) -> Path:
    """An external test set: images plus labels.csv with columns image_id,dx."""
    folder = tmp_path / "external"
    folder.mkdir()
    ids = [f"ext_{i}" for i in range(len(CODES))]
    for image_id, image in zip(ids, make_images(len(ids), 40, 30, seed=3), strict=True):
        Image.fromarray(image).save(folder / f"{image_id}.png")
    pd.DataFrame({"image_id": ids, "dx": list(CODES)}).to_csv(folder / "labels.csv", index=False)
    return folder
