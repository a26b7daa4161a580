"""Helpers for the predict, export, service and browser tests: test images and a Keras-free interpreter."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
from PIL import Image

from conftest import make_images


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo(width: int = 60, height: int = 45, seed: int = 5) -> Image.Image:
    """A non-square RGB photo with structure (a bright disc off centre), so orientation matters."""
    pixels = make_images(1, height, width, seed=seed)[0] // 2
    yy, xx = np.mgrid[:height, :width]
    pixels[(yy - height // 3) ** 2 + (xx - width // 4) ** 2 < (height // 5) ** 2] = 250
    return Image.fromarray(pixels)


BLOCK_TRAINING_BACKENDS = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("keras", "tensorflow", "tf2onnx", "torch", "jax"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
sys.meta_path.insert(0, Block())
"""


def run_without_keras(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter where importing Keras, TensorFlow or tf2onnx fails."""
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TRAINING_BACKENDS + code], capture_output=True, text=True, timeout=120
    )
