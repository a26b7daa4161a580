"""Out-of-distribution image sets anyone can rebuild offline, for benchmarks/ood.py.

Far OOD: natural photos and faces (scikit-image's `data` module, matplotlib's sample portrait),
other medical imaging (microscopy, fundus), synthetic noise / flat colours / patterns, and rendered
text, charts and screenshots (matplotlib). Near OOD: HAM10000's own test images turned grey or
inverted. Each set is a list of RGB PIL images at their native size; several random crops per source
picture give each set a few hundred images, the same ones for the same seed. The noise and the
rendered sets come from `skinpamper.scoring.not_dermoscopy`, whose generators the dermoscopy detector
is fitted on (with another seed); photos, faces and other medical images it never sees.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from skinpamper.scoring.not_dermoscopy import rendered, synthetic

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "moon", "coins", "clock", "brick",
          "grass", "gravel", "hubble_deep_field", "horse", "cat")  # fmt: skip
MEDICAL = ("retina", "immunohistochemistry", "cell", "microaneurysms")


def _rgb(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8:
        array = (255 * (array.astype(np.float64) / max(float(array.max()), 1e-9))).astype(np.uint8)
    image = Image.fromarray(array)
    return image.convert("RGB")


def _crops(image: Image.Image, count: int, rng: np.random.Generator) -> list[Image.Image]:
    """The whole picture, then random square-ish crops of 30-90% of its shorter side."""
    out = [image]
    width, height = image.size
    for _ in range(count - 1):
        side = int(min(width, height) * rng.uniform(0.3, 0.9))
        left, top = rng.integers(0, width - side + 1), rng.integers(0, height - side + 1)
        out.append(image.crop((left, top, left + side, top + int(side * rng.uniform(0.75, 1.0)))))
    return out


def _skimage(names: tuple[str, ...], per_image: int, rng: np.random.Generator) -> list[Image.Image]:
    from skimage import data

    images = []
    for name in names:
        images += _crops(_rgb(getattr(data, name)()), per_image, rng)
    return images


def photos(rng: np.random.Generator, per_image: int = 12) -> list[Image.Image]:
    """Natural photos and textures, with crops; plus 200 small faces (LFW) and a portrait."""
    from matplotlib import cbook
    from skimage import data

    images = _skimage(PHOTOS, per_image, rng)
    images += [_rgb(face) for face in data.lfw_subset()]
    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        images.append(Image.open(handle).convert("RGB"))
    return images


def medical(rng: np.random.Generator, per_image: int = 30) -> list[Image.Image]:
    """Other medical images: fundus, immunohistochemistry, microscopy, with crops."""
    return _skimage(MEDICAL, per_image, rng)


def grey(images: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 -> the same images in grey (ITU-R 601 luma), still 3 channels."""
    luma = images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.repeat(np.round(luma).astype(np.uint8)[..., None], 3, axis=-1)


def inverted(images: np.ndarray) -> np.ndarray:
    return 255 - images


FAR = {"photos and faces": photos, "other medical images": medical, "noise and flat colours": synthetic,
       "text, charts, screenshots": rendered}  # fmt: skip
