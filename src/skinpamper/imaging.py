"""Decode one image file and make it square at a target size, the same way at training and prediction.

Non-square photos (Kaggle's are 600x450) can be squashed (what hmnist did), centre-cropped, or padded
with the image's border colour. JPEG draft mode decodes at a reduced scale first, which makes
loading 600x450 files at 28 or 64 px several times faster without visible loss.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from skinpamper.errors import ImageError

Fit = Literal["squash", "crop", "pad"]
FITS: tuple[str, ...] = ("squash", "crop", "pad")
# Far above any dermoscopy photo (a 24 MP camera is 24e6) and far below a decompression bomb.
MAX_PIXELS = 40_000_000


def open_image(source: Path | bytes, name: str | None = None, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open and fully decode an image as 8-bit RGB, honouring EXIF orientation.

    Raises ImageError naming the file for unreadable, truncated or oversized images.
    """
    label = name or ("<upload>" if isinstance(source, bytes) else str(source))
    try:
        image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        width, height = image.size
        if width * height > max_pixels:
            raise ImageError(
                f"{label}: image is {width}x{height} = {width * height:,} pixels, over the limit of "
                f"{max_pixels:,} (possible decompression bomb)"
            )
        return image
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{label}: not a readable image ({exc})") from exc
    except FileNotFoundError as exc:
        raise ImageError(f"{label}: file not found") from exc
    except OSError as exc:
        raise ImageError(f"{label}: cannot read image ({exc})") from exc


def to_rgb(image: Image.Image, label: str) -> Image.Image:
    """Decode pixels and convert any mode (RGBA, L, P, CMYK, 16-bit) to 8-bit RGB."""
    try:
        image = ImageOps.exif_transpose(image)
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
    except OSError as exc:
        raise ImageError(f"{label}: truncated or corrupt image ({exc})") from exc


def fit_square(image: Image.Image, size: int, fit: Fit = "squash") -> np.ndarray:
    """Resize an RGB image to (size, size, 3) uint8 by squashing, centre-cropping or padding."""
    width, height = image.size
    if fit == "crop":
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    elif fit == "pad":
        side = max(width, height)
        edge = tuple(int(v) for v in np.asarray(image)[[0, -1]].reshape(-1, 3).mean(axis=0))
        canvas = Image.new("RGB", (side, side), edge)
        canvas.paste(image, ((side - width) // 2, (side - height) // 2))
        image = canvas
    elif fit != "squash":
        raise ValueError(f"unknown fit {fit!r}; choose one of {FITS}")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.asarray(image, dtype=np.uint8)


def load_image(
    source: Path | bytes,
    size: int,
    fit: Fit = "squash",
    name: str | None = None,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """Decode one file (or uploaded bytes) to a (size, size, 3) uint8 array."""
    label = name or ("<upload>" if isinstance(source, bytes) else str(source))
    image = open_image(source, label, max_pixels)
    if image.format == "JPEG":
        # Decode at the smallest DCT scale that keeps 2x the target on each side, so LANCZOS still
        # has enough pixels to antialias from.
        image.draft("RGB", (2 * size, 2 * size))
    try:
        image.load()
    except OSError as exc:
        raise ImageError(f"{label}: truncated or corrupt image ({exc})") from exc
    return fit_square(to_rgb(image, label), size, fit)
