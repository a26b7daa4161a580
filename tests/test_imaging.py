"""The decoder on damaged files: every file gives pixels or one ImageError line naming it, nothing else."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fuzz_corpus import damaged_files, encode, valid_files
from skinpamper.errors import ImageError, ImageTooLargeError
from skinpamper.imaging import load_image, read_size

CORPUS_SIZE = 1500
# Pillow warns about EXIF it reads past; the CLI silences that, here it would only fill the summary.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def corpus() -> dict[str, bytes]:
    return damaged_files(CORPUS_SIZE)


def test_fuzzed_files_decode_or_fail_cleanly(corpus: dict[str, bytes]) -> None:
    assert len(corpus) >= 1000
    decoded, refused = 0, 0
    for name, data in corpus.items():
        try:
            array = load_image(data, 28, name=name)
        except ImageError as exc:  # anything else escapes and fails the test, naming the file in its trace
            message = str(exc)
            assert message.startswith(f"{name}: ") and "\n" not in message, message
            assert " at 0x" not in message, message  # no object reprs with heap addresses
            refused += 1
        else:
            assert array.shape == (28, 28, 3) and array.dtype == np.uint8
            decoded += 1
    # The mutations must exercise both outcomes, or the corpus tests nothing.
    assert decoded > 100 and refused > 500, (decoded, refused)


def test_header_reading_fails_cleanly_too(corpus: dict[str, bytes]) -> None:
    for name, data in corpus.items():
        try:
            width, height = read_size(data, name)
        except ImageError as exc:
            assert str(exc).startswith(f"{name}: ")
        else:
            assert width >= 1 and height >= 1


def test_the_issues_damaged_pngs_are_image_errors(corpus: dict[str, bytes]) -> None:
    with pytest.raises(ImageError, match=r"^short.png: truncated or corrupt image \(Truncated IHDR chunk\)$"):
        load_image(corpus["short.png"], 28, name="short.png")
    # Random EXIF bytes say nothing about orientation: the pixels are still decoded.
    assert load_image(corpus["badexif.png"], 28, name="badexif.png").shape == (28, 28, 3)


def test_valid_files_all_decode() -> None:
    for name, data in valid_files().items():
        assert load_image(data, 28, name=name).shape == (28, 28, 3)


def test_exif_orientation_is_applied() -> None:
    tall = Image.new("RGB", (20, 10), (0, 0, 0))
    tall.paste((255, 255, 255), (0, 0, 10, 10))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    upright = load_image(encode(tall, "PNG", exif=exif.tobytes()), 20, fit="pad")
    # Turned upright (10 wide, 20 tall) the white half is on top; padding adds columns only.
    assert upright[5, 10].min() > 200 and upright[15, 10].max() < 50


def test_a_folder_is_not_an_image(tmp_path: Path) -> None:
    folder = tmp_path / "x.jpg"
    folder.mkdir()
    with pytest.raises(ImageError, match=r"x.jpg: a folder, not an image file$"):
        load_image(folder, 8)


@pytest.mark.parametrize("kind", ["FIFO", "socket"])
def test_only_regular_files_are_opened_so_a_fifo_never_hangs(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    listener = socket.socket(socket.AF_UNIX)
    if kind == "FIFO":
        os.mkfifo(path)
    else:
        listener.bind(str(path))
    outcome: list[BaseException] = []
    reader = threading.Thread(target=lambda: _capture(outcome, load_image, path, 8), daemon=True)
    reader.start()
    reader.join(timeout=10)
    try:
        assert not reader.is_alive(), "load_image waited on the FIFO"
    finally:
        if reader.is_alive():  # let the blocked open go, so the test run can end
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        listener.close()
    assert isinstance(outcome[0], ImageError)
    assert str(outcome[0]) == f"{path}: a {kind}, not a regular file"


def _capture(outcome: list[BaseException], function, *args) -> None:
    try:
        function(*args)
    except Exception as exc:
        outcome.append(exc)


def test_padding_a_one_pixel_wide_strip_never_builds_its_square(tmp_path: Path) -> None:
    strip = Image.new("L", (1, 20_000_000), 255)
    strip.paste(0, (0, 10_000_000, 1, 20_000_000))  # the lower half black
    path = tmp_path / "strip.png"
    strip.save(path, compress_level=1)
    padded = load_image(path, 28, fit="pad")
    assert padded.shape == (28, 28, 3)
    column = padded[:, 13, 0]  # a 1-pixel line, white above black, on a grey border-coloured canvas
    assert column[:13].min() > 200 and column[15:].max() < 50 and abs(int(padded[14, 2, 0]) - 128) <= 1


def test_pillows_own_bomb_limit_is_too_large_not_corrupt() -> None:
    # Over twice Pillow's MAX_IMAGE_PIXELS it refuses at open; that is a size, not damage.
    huge = encode(Image.new("1", (20_000, 20_000)), "PNG")
    with pytest.raises(ImageTooLargeError, match="^huge.png: "):
        load_image(huge, 8, name="huge.png", max_pixels=10**12)
    large = encode(Image.new("1", (10_000, 5_000)), "PNG")
    with pytest.raises(ImageTooLargeError, match="50,000,000 pixels, over the limit of 40,000,000"):
        load_image(large, 8, name="large.png")
