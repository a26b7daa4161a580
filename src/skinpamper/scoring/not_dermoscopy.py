"""Pictures that are not dermoscopy, drawn offline from NumPy, Pillow and matplotlib alone.

They are the negatives of the dermoscopy detector (`scoring.dermoscopy`), fitted at the end of every
training run, so they may use nothing outside the base install (no scikit-image, no downloads):
noise of three kinds (uniform, Gaussian, and 1/f noise, whose spectrum is that of natural photos),
flat colours, gradients, checkerboards and stripes, drawings of random shapes, text pages, and
matplotlib charts. The OOD benchmark (benchmarks/ood_sets.py) draws its noise and chart sets from
here with another seed, and its photos, faces and other medical images from scikit-image, a family
the detector never sees.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

WORDS = ("skin", "lesion", "report", "balanced", "accuracy", "model", "metrics", "recall", "table", "page")


def _rgb(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).convert("RGB")


def _size(rng: np.random.Generator) -> tuple[int, int]:
    """(height, width) of a picture: 96-400 px a side, any aspect."""
    return int(rng.integers(96, 401)), int(rng.integers(96, 401))


def pink_noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Colour noise with a 1/f amplitude spectrum, stretched to a random range of colours."""
    freq = np.hypot(*np.meshgrid(np.fft.fftfreq(height), np.fft.rfftfreq(width), indexing="ij"))
    spectrum = rng.normal(size=(3, *freq.shape)) + 1j * rng.normal(size=(3, *freq.shape))
    field = np.fft.irfft2(spectrum / np.maximum(freq, 1.0 / max(height, width)) ** rng.uniform(0.8, 1.5))
    field = np.moveaxis(field[:, :height, :width], 0, -1)
    field = (field - field.min()) / max(float(np.ptp(field)), 1e-9)
    low, high = rng.uniform(0, 120, 3), rng.uniform(135, 255, 3)
    return low + field * (high - low)


def synthetic(rng: np.random.Generator, count: int = 240) -> list[Image.Image]:
    """Uniform and Gaussian noise, flat colours, colour gradients and checkerboards, in equal parts."""
    makers: list[Callable[[], np.ndarray]] = [
        lambda: rng.integers(0, 256, (150, 200, 3)),
        lambda: rng.normal(rng.uniform(60, 200), rng.uniform(10, 60), (150, 200, 3)),
        lambda: np.broadcast_to(rng.integers(0, 256, 3), (150, 200, 3)),
        lambda: np.linspace(rng.integers(0, 256, 3), rng.integers(0, 256, 3), 200)[None].repeat(150, 0),
        lambda: (
            (np.indices((150, 200)).sum(0) // rng.integers(4, 40) % 2)[..., None] * rng.integers(0, 256, 3)
        ),
    ]
    return [_rgb(makers[i % len(makers)]()) for i in range(count)]


def drawings(rng: np.random.Generator, count: int = 120) -> list[Image.Image]:
    """Random ellipses, rectangles, polygons and lines on a flat, gradient or noisy ground."""
    images = []
    for _ in range(count):
        height, width = _size(rng)
        flat = np.broadcast_to(rng.integers(0, 256, 3), (height, width, 3))
        image = _rgb(pink_noise(rng, height, width) if rng.uniform() < 0.3 else flat)
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(3, 25))):
            box = sorted(rng.integers(0, width, 2).tolist()), sorted(rng.integers(0, height, 2).tolist())
            xy = [box[0][0], box[1][0], box[0][1], box[1][1]]
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            kind = rng.integers(0, 4)
            if kind == 0:
                draw.ellipse(xy, fill=colour)
            elif kind == 1:
                draw.rectangle(xy, fill=colour)
            elif kind == 2:
                draw.polygon(
                    [tuple(p) for p in rng.integers(0, min(width, height), (5, 2)).tolist()], fill=colour
                )
            else:
                draw.line(xy, fill=colour, width=int(rng.integers(1, 8)))
        images.append(image)
    return images


def text_pages(rng: np.random.Generator, count: int = 60) -> list[Image.Image]:
    """Lines of words in Pillow's own font on a light or dark page."""
    images = []
    for _ in range(count):
        height, width = _size(rng)
        dark = rng.uniform() < 0.3
        page = Image.new("RGB", (width, height), (30, 30, 30) if dark else tuple(rng.integers(225, 256, 3)))
        draw = ImageDraw.Draw(page)
        ink = (230, 230, 230) if dark else tuple(int(v) for v in rng.integers(0, 90, 3))
        size = int(rng.integers(8, 24))
        for line in range(0, height - size, int(size * 1.5)):
            draw.text((4, line), " ".join(rng.choice(WORDS, 8)), fill=ink, font_size=size)
        images.append(page)
    return images


def rendered(rng: np.random.Generator, count: int = 120) -> list[Image.Image]:
    """Matplotlib figures: line and bar charts, scatter plots, text pages, image-like heatmaps."""
    from matplotlib.figure import Figure

    images = []
    for i in range(count):
        fig = Figure(figsize=(rng.uniform(3, 6), rng.uniform(2, 4)), dpi=60)
        ax = fig.subplots()
        kind = i % 4
        if kind == 0:
            ax.plot(np.cumsum(rng.normal(size=(50, 3)), axis=0))
        elif kind == 1:
            ax.bar(range(7), rng.uniform(0, 1, 7), color=[f"C{c}" for c in range(7)])
        elif kind == 2:
            ax.axis("off")
            for line in range(8):
                text = " ".join(rng.choice(WORDS, 6))
                ax.text(0.02, 0.95 - line * 0.12, text, fontsize=rng.uniform(8, 14))
        else:
            ax.imshow(rng.normal(size=(12, 12)), cmap=str(rng.choice(["viridis", "magma", "coolwarm"])))
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        images.append(Image.open(buffer).convert("RGB"))
    return images


def not_dermoscopy(rng: np.random.Generator, count: int = 600) -> list[Image.Image]:
    """About `count` negatives from every generator here: a quarter noise and flat colours, a quarter
    1/f noise, a quarter drawings, a quarter text pages and charts."""
    quarter = max(count // 4, 4)
    return [
        *synthetic(rng, quarter),
        *(_rgb(pink_noise(rng, *_size(rng))) for _ in range(quarter)),
        *drawings(rng, quarter),
        *text_pages(rng, quarter // 2),
        *rendered(rng, quarter - quarter // 2),
    ]
