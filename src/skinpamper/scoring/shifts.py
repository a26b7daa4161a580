"""Simulated clinic shifts: dermoscopy as another device or clinic would photograph it.

HAM10000's images are pink, rimless and tightly framed. A second clinic's (768 x 560, 200 images)
differed from them mostly by a dark circular rim and a yellow-white colour cast, and the Mahalanobis
detector refused 45% of them as "not dermoscopy". Each function here takes one RGB uint8 image of any
size and a random generator and returns the image as such a device might have taken it; strengths
are drawn from stated ranges, so a seed gives the same shifts. They serve three purposes: positives
for the dermoscopy detector (`scoring.dermoscopy`), the shifted-dermoscopy benchmark
(benchmarks/clinic_shift.py) and the tests.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

Shift = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _border_colour(image: np.ndarray) -> np.ndarray:
    """Median colour of the outermost rows and columns: the skin around a centred lesion."""
    edges = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).astype(np.float64)
    return np.median(edges, axis=0)


def _radius(height: int, width: int) -> np.ndarray:
    """Each pixel's distance from the centre, as a share of half the image's diagonal."""
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    return np.hypot(rows - (height - 1) / 2, cols - (width - 1) / 2) / (np.hypot(height, width) / 2)


def zoom_out(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The lesion small in a wide field of skin: the image shrunk to 35-70% and feathered into a
    mottled field of its own border colour, at a random place."""
    height, width = image.shape[:2]
    scale = rng.uniform(0.35, 0.7)
    inner_h, inner_w = max(1, round(height * scale)), max(1, round(width * scale))
    small = np.asarray(Image.fromarray(image).resize((inner_w, inner_h), Image.Resampling.LANCZOS))
    skin = _border_colour(image)
    mottle = np.asarray(
        Image.fromarray(
            rng.normal(0, 1, (max(2, height // 16), max(2, width // 16))).astype(np.float32)
        ).resize((width, height), Image.Resampling.BICUBIC)
    )
    field = skin + rng.uniform(3, 10) * mottle[..., None] + rng.normal(0, 3, (height, width, 3))
    top = rng.integers(0, height - inner_h + 1)
    left = rng.integers(0, width - inner_w + 1)
    weight = np.clip((1 - _radius(inner_h, inner_w)) / 0.25, 0, 1)[..., None]  # fades out at the edge
    patch = field[top : top + inner_h, left : left + inner_w]
    field[top : top + inner_h, left : left + inner_w] = weight * small + (1 - weight) * patch
    return np.clip(field, 0, 255).round().astype(np.uint8)


def dark_rim(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The dermatoscope's circular field of view: near-black outside a circle reaching 65-95% of the
    half-diagonal (so the corners, and in wide images the sides, go dark), with vignetting inside."""
    height, width = image.shape[:2]
    radius = _radius(height, width)
    edge = rng.uniform(0.65, 0.95)
    soft = rng.uniform(0.01, 0.05)
    inside = np.clip((edge - radius) / soft, 0, 1)
    vignette = 1 - rng.uniform(0.1, 0.4) * (radius / edge) ** 2
    black = rng.uniform(0, 25) + rng.normal(0, 2, (height, width))
    out = image * (inside * vignette)[..., None] + ((1 - inside) * black)[..., None]
    return np.clip(out, 0, 255).round().astype(np.uint8)


def colour_cast(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Another white balance: mostly the yellow-white of a cooler LED dermatoscope (green up, blue
    down, lifted towards white), else a bluish cast; channel gains of a few to 20%."""
    if rng.uniform() < 0.7:
        gains = np.array([rng.uniform(0.95, 1.05), rng.uniform(1.02, 1.15), rng.uniform(0.75, 0.92)])
        lift = rng.uniform(0.05, 0.25)
    else:
        gains = np.array([rng.uniform(0.85, 0.97), rng.uniform(0.95, 1.05), rng.uniform(1.05, 1.2)])
        lift = rng.uniform(0.0, 0.1)
    out = image * gains
    out = out + lift * (255 - out)
    return np.clip(out, 0, 255).round().astype(np.uint8)


def jpeg(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Re-encoded as a JPEG of quality 10-40 (HAM10000's are about 75): blocks and colour bleeding."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(rng.integers(10, 41)))
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


def blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Out of focus: a Gaussian blur of 0.5-1.5% of the shorter side (1-2 px on HAM's 200 x 150)."""
    radius = rng.uniform(0.005, 0.015) * min(image.shape[:2])
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)))


def aspect_and_size(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Another sensor: cropped to 1:1, 4:3, 3:4 or 16:9 around the centre and resized so its longer
    side is 96-1,024 px."""
    height, width = image.shape[:2]
    ratio = rng.choice([1.0, 4 / 3, 3 / 4, 16 / 9])  # width / height
    crop_w, crop_h = (
        (width, round(width / ratio)) if width / height < ratio else (round(height * ratio), height)
    )
    crop_w, crop_h = max(1, min(crop_w, width)), max(1, min(crop_h, height))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    cropped = Image.fromarray(image[top : top + crop_h, left : left + crop_w])
    longest = rng.integers(96, 1025)
    scale = longest / max(crop_w, crop_h)
    size = (max(1, round(crop_w * scale)), max(1, round(crop_h * scale)))
    return np.asarray(cropped.resize(size, Image.Resampling.LANCZOS))


def other_clinic(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What the second clinic's images looked like: a yellow-white cast and a dark rim, at 768 x 560."""
    resized = np.asarray(Image.fromarray(image).resize((768, 560), Image.Resampling.LANCZOS))
    return dark_rim(colour_cast(resized, rng), rng)


SHIFTS: dict[str, Shift] = {
    "zoom_out": zoom_out,
    "dark_rim": dark_rim,
    "colour_cast": colour_cast,
    "jpeg": jpeg,
    "blur": blur,
    "aspect_and_size": aspect_and_size,
    "other_clinic": other_clinic,
}
SINGLE = tuple(name for name in SHIFTS if name != "other_clinic")  # the shifts one at a time


def random_shift(image: np.ndarray, rng: np.random.Generator, most: int = 3) -> np.ndarray:
    """One to `most` different single shifts in random order: the detector's augmented positives."""
    names = rng.choice(SINGLE, size=int(rng.integers(1, most + 1)), replace=False)
    for name in names:
        image = SHIFTS[str(name)](image, rng)
    return image
