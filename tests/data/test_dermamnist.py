from pathlib import Path

import numpy as np
import pytest

from skinpamper.classes import CODES
from skinpamper.data.dermamnist import read_dermamnist
from skinpamper.data.splits import split_dataset
from skinpamper.errors import DataError


def test_official_split_and_label_order_are_kept(dermamnist_npz: Path) -> None:
    data = read_dermamnist(dermamnist_npz)
    raw = np.load(dermamnist_npz)
    assert data.images.shape == (28, 28, 28, 3)
    assert np.array_equal(data.images[:14], raw["train_images"])
    # DermaMNIST numbers classes alphabetically, which is the canonical order.
    assert [CODES[i] for i in data.labels[14:21]] == list(CODES)
    split = split_dataset(data)
    assert (len(split.train), len(split.val), len(split.test)) == (14, 7, 7)
    assert not split.grouped and "no lesion ids" in split.note


def test_resized_on_request(dermamnist_npz: Path) -> None:
    assert read_dermamnist(dermamnist_npz, size=64).images.shape == (28, 64, 64, 3)


def test_missing_keys_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, train_images=np.zeros((1, 28, 28, 3), np.uint8))
    with pytest.raises(DataError, match="missing keys.*train_labels"):
        read_dermamnist(path)


def test_not_an_npz(tmp_path: Path) -> None:
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="broken.npz: not a readable .npz"):
        read_dermamnist(path)


def test_wrong_shape(tmp_path: Path) -> None:
    path = tmp_path / "shape.npz"
    arrays = {}
    for name in ("train", "val", "test"):
        arrays[f"{name}_images"] = np.zeros((2, 28, 27, 3), np.uint8)
        arrays[f"{name}_labels"] = np.zeros((2, 1), np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=r"shape \(2, 28, 27, 3\)"):
        read_dermamnist(path)
