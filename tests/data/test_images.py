import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers import DX
from skinpamper.classes import CODES
from skinpamper.data.images import read_class_folders, read_ham_images, read_labelled
from skinpamper.errors import DataError, ImageError
from skinpamper.imaging import fit_square, load_image


@pytest.mark.parametrize("size", [8, 16, 28])
def test_ham_jpegs_resized_and_labelled(ham_folder: Path, size: int) -> None:
    calls = []
    data = read_ham_images(
        ham_folder, ham_folder / "HAM10000_metadata.csv", size, "squash", lambda d, t: calls.append((d, t))
    )
    assert data.images.shape == (len(DX), size, size, 3)
    assert [CODES[i] for i in data.labels] == DX
    assert calls[-1] == (len(DX), len(DX))
    assert data.meta["lesion_id"].notna().all()


def test_missing_image_file_names_id_and_folder(ham_folder: Path) -> None:
    (ham_folder / "HAM10000_images_part_1" / "ISIC_0000002.jpg").unlink()
    with pytest.raises(DataError, match="line 4: image ISIC_0000002 has no file under"):
        read_ham_images(ham_folder, ham_folder / "HAM10000_metadata.csv", 8, "squash")


def test_truncated_jpeg_is_named(ham_folder: Path) -> None:
    path = ham_folder / "HAM10000_images_part_1" / "ISIC_0000001.jpg"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ImageError, match="ISIC_0000001.jpg"):
        read_ham_images(ham_folder, ham_folder / "HAM10000_metadata.csv", 8, "squash")


def test_a_damaged_png_in_a_dataset_is_named(class_folders: Path) -> None:
    short = class_folders / "nv" / "short.png"  # Pillow raises ValueError for it, not OSError
    short.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x05IHDR\x00\x00\x00\x10\x00")
    with pytest.raises(ImageError, match=r"short.png: truncated or corrupt image \(Truncated IHDR chunk\)"):
        read_class_folders(class_folders, 8, "squash")


def test_not_an_image_is_named(tmp_path: Path) -> None:
    path = tmp_path / "fake.jpg"
    path.write_text("hello")
    with pytest.raises(ImageError, match=r"fake.jpg: not a readable image"):
        load_image(path, 8)


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    Image.new("L", (5000, 5000)).save(path)
    with pytest.raises(ImageError, match="25,000,000 pixels, over the limit of 1,000,000"):
        load_image(path, 8, max_pixels=1_000_000)


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "I;16", "CMYK"])
def test_any_mode_becomes_rgb(mode: str) -> None:
    buffer = io.BytesIO()
    image = Image.new("RGB", (30, 20), (200, 100, 50)).convert(mode)
    image.save(buffer, format="TIFF" if mode in ("I;16", "CMYK") else "PNG")
    array = load_image(buffer.getvalue(), 8)
    assert array.shape == (8, 8, 3)
    assert array.dtype == np.uint8


def test_sixteen_bit_grey_keeps_contrast() -> None:
    wide = np.tile(np.linspace(0, 65535, 32, dtype=np.uint16), (32, 1))
    buffer = io.BytesIO()
    Image.fromarray(wide).save(buffer, format="PNG")
    array = load_image(buffer.getvalue(), 32)
    assert array[:, 0].mean() < 10 and array[:, -1].mean() > 245


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 20, 20))  # blue on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, quality=100)
    array = load_image(buffer.getvalue(), 20, fit="crop")
    assert array[2, 10, 2] > 200  # blue now on top


@pytest.mark.parametrize("fit", ["squash", "crop", "pad"])
def test_fit_makes_square(fit: str) -> None:
    image = Image.new("RGB", (60, 30), (10, 200, 10))
    image.paste((255, 255, 255), (0, 0, 15, 30))  # white band on the left quarter
    array = fit_square(image, 10, fit)
    assert array.shape == (10, 10, 3)
    if fit == "crop":
        assert array[:, 0].mean() < 150  # the white band was cropped off
    else:
        assert array[5, 0].mean() > 200  # squash and pad keep the band


def test_class_folders(class_folders: Path) -> None:
    data = read_class_folders(class_folders, 12, "pad")
    assert data.images.shape == (14, 12, 12, 3)
    assert sorted(data.class_counts().tolist()) == [2] * 7
    assert data.meta["image_id"].iloc[0] == "akiec_0"


def test_class_folders_unknown_name_is_refused(class_folders: Path) -> None:
    (class_folders / "melanoma").mkdir()
    with pytest.raises(DataError, match=r"\['melanoma'\] are not class codes"):
        read_class_folders(class_folders, 12, "pad")


def test_labelled_folder(labelled_folder: Path) -> None:
    data = read_labelled(labelled_folder / "labels.csv", 16, "crop")
    assert [CODES[i] for i in data.labels] == list(CODES)
    assert data.meta["image_id"].tolist() == [f"ext_{i}" for i in range(7)]


def test_labelled_csv_naming_missing_file(labelled_folder: Path) -> None:
    (labelled_folder / "ext_3.png").unlink()
    with pytest.raises(DataError, match=r"labels.csv: line 5: image ext_3 has no file"):
        read_labelled(labelled_folder / "labels.csv", 16, "crop")


def test_labelled_csv_unknown_dx(labelled_folder: Path) -> None:
    table = labelled_folder / "labels.csv"
    frame = pd.read_csv(table)
    frame.loc[0, "dx"] = "scc"
    frame.to_csv(table, index=False)
    with pytest.raises(DataError, match="line 2: unknown dx code 'scc'"):
        read_labelled(table, 16, "crop")
