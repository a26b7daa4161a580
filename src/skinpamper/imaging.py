"""The one place where an image file's bytes become pixels, the same way at training and prediction.

Everything Pillow can raise for bad data becomes an ImageError naming the file: Pillow's format
plug-ins parse untrusted bytes and fail with OSError, ValueError, SyntaxError, IndexError, EOFError
or struct.error, whichever their parser hits first (tests/test_imaging.py fuzzes them to find out).

Non-square photos (Kaggle's are 600x450) can be squashed (what hmnist did), centre-cropped, or padded
with the image's border colour. JPEG draft mode decodes at a reduced scale first, which makes
loading 600x450 files at 28 or 64 px several times faster without visible loss.
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Literal, get_args

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from skinpamper.errors import ImageError, ImageTooLargeError

Fit = Literal["squash", "crop", "pad"]
FITS: tuple[str, ...] = get_args(Fit)
# Far above any dermoscopy photo (a 24 MP camera is 24e6) and far below a decompression bomb.
MAX_PIXELS = 40_000_000
# What Pillow raises for malformed data (found by fuzzing; not only OSError): a truncated IHDR chunk
# is a ValueError, a broken PNG chunk or EXIF block a SyntaxError, a short iCCP chunk an IndexError.
DECODE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    ValueError,
    SyntaxError,
    IndexError,
    EOFError,
    struct.error,
)
# EXIF orientation -> the transpose that makes the image upright (as PIL.ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ADDRESS = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")  # an object's repr: a heap address, no use to a user


def _label(source: Path | bytes, name: str | None) -> str:
    return name or ("<upload>" if isinstance(source, bytes) else str(source))


@contextmanager
def _stream(source: Path | bytes, label: str) -> Iterator[BinaryIO]:
    """The bytes to decode; a path only when it is a regular file.

    Opening a FIFO waits for a writer that may never come, and a device or socket is no image: they
    are refused from their metadata first, and opened without blocking and checked again, so a file
    swapped in between cannot hang the job either.
    """
    if isinstance(source, bytes):
        yield io.BytesIO(source)
        return
    _check_regular(Path(source).stat().st_mode, label)
    fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        _check_regular(os.fstat(fd).st_mode, label)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        yield handle


def _check_regular(mode: int, label: str) -> None:
    if stat.S_ISDIR(mode):
        raise ImageError(f"{label}: a folder, not an image file")
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise ImageError(f"{label}: {kind}, not a regular file")


@contextmanager
def _decoding(label: str) -> Iterator[None]:
    """Turn any failure to read or decode into one ImageError line naming `label`."""
    try:
        yield
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{label}: {exc}") from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{label}: not a readable image (not JPEG, PNG or another format Pillow knows)"
        ) from None
    except FileNotFoundError:
        raise ImageError(f"{label}: file not found") from None
    except PermissionError:
        raise ImageError(f"{label}: permission denied") from None
    except DECODE_ERRORS as exc:
        reason = _ADDRESS.sub("the image", str(exc)) or type(exc).__name__
        raise ImageError(f"{label}: truncated or corrupt image ({reason})") from None


def check_pixels(width: int, height: int, label: str, max_pixels: int) -> None:
    """ImageTooLargeError when a header declares more than `max_pixels` pixels."""
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{label}: image is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,} (possible decompression bomb)"
        )


def read_size(source: Path | bytes, name: str | None = None) -> tuple[int, int]:
    """(width, height) from the header alone, without decoding pixels; ImageError if unreadable."""
    label = _label(source, name)
    with _decoding(label), _stream(source, label) as stream, Image.open(stream) as image:
        return image.size


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a corrupt EXIF block says nothing about it, so it is left as is.

    Not ImageOps.exif_transpose: it re-encodes the EXIF block, which fails on damaged tags the
    decoder itself reads past, and the pixels are all this needs.
    """
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation)
    except (*DECODE_ERRORS, TypeError):
        return image
    method = _UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    return image if method is None else image.transpose(method)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any mode (RGBA, L, P, CMYK, 16-bit) to 8-bit RGB; transparency becomes white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: keep the top 8 bits instead of clipping everything above 255 to white.
        wide = np.asarray(image, dtype=np.uint32)
        shift = 8 if wide.max() > 255 else 0
        image = Image.fromarray((wide >> shift).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def fit_square(image: Image.Image, size: int, fit: Fit = "squash") -> np.ndarray:
    """Resize an RGB image to (size, size, 3) uint8 by squashing, centre-cropping or padding.

    Padding resizes first and pads after (as PIL.ImageOps.pad does): the canvas is then never more
    than size x size, where padding first would make a max(w, h)-sided square, terabytes for a
    1 x 20,000,000 strip that is itself well inside the pixel limit.
    """
    width, height = image.size
    if fit == "crop":
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    elif fit == "pad":
        return _pad(image, size)
    elif fit != "squash":
        raise ValueError(f"unknown fit {fit!r}; choose one of {FITS}")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.asarray(image, dtype=np.uint8)


def _pad(image: Image.Image, size: int) -> np.ndarray:
    """Fit the longer side to `size`, then centre it on a square of the image's border colour."""
    width, height = image.size
    rows = [image.crop((0, 0, width, 1)), image.crop((0, height - 1, width, height))]
    edge = tuple(
        int(v) for v in np.concatenate([np.asarray(row) for row in rows]).reshape(-1, 3).mean(axis=0)
    )
    scale = size / max(width, height)
    inner = (max(1, round(width * scale)), max(1, round(height * scale)))
    if inner != image.size:
        image = image.resize(inner, Image.Resampling.LANCZOS, reducing_gap=3.0)
    canvas = Image.new("RGB", (size, size), edge)
    canvas.paste(image, ((size - inner[0]) // 2, (size - inner[1]) // 2))
    return np.asarray(canvas, dtype=np.uint8)


def load_image(
    source: Path | bytes,
    size: int,
    fit: Fit = "squash",
    name: str | None = None,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """Decode one file (or uploaded bytes) to a (size, size, 3) uint8 array, upright, in RGB.

    Raises ImageError naming the file for an unreadable, truncated or corrupt image, and its
    subclass ImageTooLargeError, before any pixel is decoded, for one over `max_pixels`.
    """
    if fit not in FITS:  # before decoding: inside it, a ValueError reads as a corrupt file
        raise ValueError(f"unknown fit {fit!r}; choose one of {FITS}")
    label = _label(source, name)
    with _decoding(label), _stream(source, label) as stream, Image.open(stream) as image:
        check_pixels(*image.size, label, max_pixels)
        if image.format == "JPEG":
            # Decode at the smallest DCT scale that keeps 1.5x the target on each side, so LANCZOS
            # still has pixels to antialias from. A 600x450 JPEG at 128 px then decodes at 300x225 in
            # 1.7 ms instead of 4.1; on 200 such images the Lite0 probabilities moved by at most 0.031
            # (0.0016 on average), less than re-saving the 128 px input as JPEG q90 moves them (0.23).
            image.draft("RGB", (size * 3 // 2, size * 3 // 2))
        image.load()
        return fit_square(_to_rgb(_upright(image)), size, fit)
