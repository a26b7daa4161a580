from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import DX, make_images
from skinpamper.classes import CODES
from skinpamper.data.hmnist import read_hmnist
from skinpamper.errors import DataError


def test_rgb_csv_keeps_pixels_labels_and_metadata(ham_folder: Path) -> None:
    data = read_hmnist(ham_folder / "hmnist_8_8_RGB.csv", ham_folder / "HAM10000_metadata.csv")
    assert data.images.shape == (len(DX), 8, 8, 3)
    assert np.array_equal(data.images, make_images(len(DX), 8, 8))
    assert [CODES[i] for i in data.labels] == DX
    assert data.meta["image_id"].iloc[3] == "ISIC_0000003"
    assert data.meta["sex"].isna().sum() == sum(1 for i in range(len(DX)) if i % 3 == 0)


def test_grey_csv_is_repeated_into_three_channels(ham_folder: Path) -> None:
    data = read_hmnist(ham_folder / "hmnist_8_8_L.csv", ham_folder / "HAM10000_metadata.csv")
    assert data.images.shape == (len(DX), 8, 8, 3)
    assert np.array_equal(data.images[..., 0], data.images[..., 2])


def _edit(folder: Path, change) -> Path:
    path = folder / "hmnist_8_8_RGB.csv"
    change(pd.read_csv(path, dtype=str)).to_csv(path, index=False)
    return path


def _set(column: str, row: int, value: str):
    def change(table: pd.DataFrame) -> pd.DataFrame:
        table.loc[row, column] = value
        return table

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop(columns=["pixel0005"]), "191 pixel columns"),
        (_set("pixel0007", 0, "x"), "line 2, column pixel0007: non-numeric pixel value 'x'"),
        (_set("pixel0003", 2, "300"), "line 4, column pixel0003: pixel value 300 is not in 0..255"),
        (_set("pixel0003", 2, "-1"), "line 4, column pixel0003: pixel value -1 is not in 0..255"),
        (lambda t: t.drop(columns=["label"]), "no 'label' column"),
        (_set("label", 0, "9"), "line 2: unknown label '9'"),
        (lambda t: t.assign(label=t["label"].to_numpy()[::-1]), "rows disagree"),
        (lambda t: t.drop(index=[0]), "rows but hmnist_8_8_RGB.csv has"),
    ],
)
def test_bad_csv_names_the_problem(ham_folder: Path, change, message: str) -> None:
    path = _edit(ham_folder, change)
    with pytest.raises(DataError, match=message) as error:
        read_hmnist(path, ham_folder / "HAM10000_metadata.csv")
    assert str(path) in str(error.value) or "HAM10000_metadata.csv" in str(error.value)


def test_metadata_missing_column_is_refused(ham_folder: Path) -> None:
    meta_path = ham_folder / "HAM10000_metadata.csv"
    pd.read_csv(meta_path).drop(columns=["lesion_id"]).to_csv(meta_path, index=False)
    with pytest.raises(DataError, match=r"HAM10000_metadata.csv: missing columns \['lesion_id'\]"):
        read_hmnist(ham_folder / "hmnist_8_8_RGB.csv", meta_path)


def test_metadata_unknown_dx_names_line(ham_folder: Path) -> None:
    meta_path = ham_folder / "HAM10000_metadata.csv"
    meta = pd.read_csv(meta_path)
    meta.loc[5, "dx"] = "melanoma"
    meta.to_csv(meta_path, index=False)
    with pytest.raises(DataError, match="line 7: unknown dx code 'melanoma'"):
        read_hmnist(ham_folder / "hmnist_8_8_RGB.csv", meta_path)
