"""The notebook API reads and splits data as the CLI does, under the CLI's names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import skinpamper
from skinpamper.data.load import load_dataset as read_dataset
from skinpamper.data.splits import shared_lesions, split_dataset
from skinpamper.errors import DataError


def test_load_dataset_takes_the_cli_options(ham_folder: Path) -> None:
    hmnist = skinpamper.load_dataset(ham_folder, image_size=8)
    assert hmnist.source.endswith("hmnist_8_8_RGB.csv")
    photos = skinpamper.load_dataset(ham_folder, image_size=16, format="jpeg", fit="crop")
    expected = read_dataset(ham_folder, size=16, fmt="jpeg", fit="crop", use_cache=False)
    np.testing.assert_array_equal(photos.images, expected.images)
    assert photos.image_size == (16, 16)


def test_load_dataset_shows_a_bar_while_decoding(ham_folder: Path, capsys: pytest.CaptureFixture) -> None:
    skinpamper.load_dataset(ham_folder, image_size=12, format="jpeg")
    assert "decoding ham" in capsys.readouterr().err
    skinpamper.load_dataset(ham_folder, image_size=12, format="jpeg")  # cached: nothing to decode
    skinpamper.load_dataset(ham_folder, image_size=8)  # the hmnist CSV: nothing to decode
    skinpamper.load_dataset(ham_folder, image_size=14, format="jpeg", progress=False)
    assert capsys.readouterr().err == ""


def test_load_dataset_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        skinpamper.load_dataset(tmp_path / "missing")


def test_split_is_the_lesion_grouped_split_train_draws(ham_folder: Path) -> None:
    dataset = skinpamper.load_dataset(ham_folder, image_size=8)
    parts = skinpamper.split(dataset, seed=4)
    same = split_dataset(dataset, 0.1, 0.2, 4)
    for name, rows in parts.parts().items():
        np.testing.assert_array_equal(rows, same.parts()[name])
    assert shared_lesions(dataset, parts).empty
    assert sum(len(rows) for rows in parts.parts().values()) == len(dataset)
