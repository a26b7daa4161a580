import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import DX
from skinpamper.data import load as load_module
from skinpamper.data.load import detect_format, load_dataset
from skinpamper.data.metadata import read_metadata
from skinpamper.errors import DataError
from skinpamper.paths import cache_dir


def test_kaggle_folder_prefers_hmnist_at_its_size_else_jpegs(ham_folder: Path) -> None:
    assert detect_format(ham_folder, 8) == ("hmnist", ham_folder / "hmnist_8_8_RGB.csv")
    assert detect_format(ham_folder, 16) == ("jpeg", ham_folder)
    assert load_dataset(ham_folder, size=8).images.shape == (len(DX), 8, 8, 3)
    assert load_dataset(ham_folder, size=16).images.shape == (len(DX), 16, 16, 3)
    assert load_dataset(ham_folder, size=8, fmt="jpeg").images.shape == (len(DX), 8, 8, 3)


def test_every_format_is_recognised(dermamnist_npz: Path, class_folders: Path, labelled_folder: Path) -> None:
    assert detect_format(dermamnist_npz, None)[0] == "dermamnist"
    assert detect_format(dermamnist_npz.parent, None)[0] == "dermamnist"
    assert detect_format(class_folders, None)[0] == "folders"
    assert detect_format(labelled_folder, None) == ("labelled", labelled_folder / "labels.csv")
    assert len(load_dataset(class_folders, size=8)) == 14
    assert len(load_dataset(labelled_folder / "labels.csv", size=8)) == 7


def test_hmnist_without_metadata_is_refused(ham_folder: Path) -> None:
    (ham_folder / "HAM10000_metadata.csv").unlink()
    with pytest.raises(DataError, match="HAM10000_metadata.csv must sit beside it"):
        load_dataset(ham_folder / "hmnist_8_8_RGB.csv")


def test_missing_path_and_unknown_layout(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or folder"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="not a recognised dataset"):
        load_dataset(tmp_path)


def test_empty_class_folders_are_refused(tmp_path: Path) -> None:
    (tmp_path / "nv").mkdir()
    with pytest.raises(DataError, match="no images found"):
        load_dataset(tmp_path)


def test_second_load_comes_from_cache(ham_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_dataset(ham_folder, size=8)
    assert len(list(cache_dir().glob("hmnist-*.npz"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("the CSV was parsed again")

    monkeypatch.setattr(load_module, "read_hmnist", fail)
    second = load_dataset(ham_folder, size=8)
    assert np.array_equal(first.images, second.images)
    pd.testing.assert_frame_equal(first.meta, second.meta)


def test_a_cached_load_names_the_path_it_was_read_from(ham_folder: Path, tmp_path: Path) -> None:
    first = load_dataset(ham_folder, size=8, fmt="jpeg")
    copy = shutil.copytree(ham_folder, tmp_path / "copy")
    second = load_dataset(copy, size=8, fmt="jpeg")  # same content: from the cache
    assert len(list(cache_dir().glob("jpeg-*.npz"))) == 1
    assert (first.source, second.source) == (str(ham_folder), str(copy))


def test_changed_content_invalidates_cache(ham_folder: Path) -> None:
    load_dataset(ham_folder, size=8)
    meta_path = ham_folder / "HAM10000_metadata.csv"
    meta = pd.read_csv(meta_path)
    meta.loc[0, "age"] = 99.0
    meta.to_csv(meta_path, index=False)
    os.utime(meta_path, ns=(1, 1))  # even a reset mtime is caught by the size change
    assert load_dataset(ham_folder, size=8).meta["age"].iloc[0] == 99.0
    assert len(list(cache_dir().glob("hmnist-*.npz"))) == 2


def test_failed_load_writes_no_cache(ham_folder: Path) -> None:
    (ham_folder / "HAM10000_images_part_2" / "ISIC_0000060.jpg").write_bytes(b"broken")
    with pytest.raises(DataError, match="ISIC_0000060.jpg"):
        load_dataset(ham_folder, size=16)
    assert not list(cache_dir().glob("*.npz"))


def test_a_labels_csv_saved_by_excel_with_a_bom_is_recognised(labelled_folder: Path) -> None:
    labels = labelled_folder / "labels.csv"
    labels.write_bytes(b"\xef\xbb\xbf" + labels.read_bytes())
    assert detect_format(labelled_folder, None) == ("labelled", labels)
    assert len(load_dataset(labelled_folder, size=8)) == 7


def test_a_semicolon_separated_csv_is_named_as_such(labelled_folder: Path) -> None:
    labels = labelled_folder / "labels.csv"
    labels.write_text(labels.read_text().replace(",", ";"))
    with pytest.raises(DataError, match=r"labels.csv: looks semicolon-separated \(header 'image_id;dx'\)"):
        load_dataset(labelled_folder, size=8)


def test_sex_and_site_are_counted_whatever_their_case(ham_folder: Path) -> None:
    meta_path = ham_folder / "HAM10000_metadata.csv"
    clean = read_metadata(meta_path)
    meta = pd.read_csv(meta_path)
    meta["sex"] = meta["sex"].str.upper()  # UNKNOWN too
    meta["localization"] = " " + meta["localization"].str.title()
    meta_path.write_text("\ufeff" + meta.to_csv(index=False), encoding="utf-8")  # and a BOM
    edited = read_metadata(meta_path)
    for column in ("sex", "localization"):
        assert edited[column].value_counts(dropna=False).equals(clean[column].value_counts(dropna=False))
