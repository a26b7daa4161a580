"""Test-time augmentation over the eight symmetries of the square (the dihedral group D4).

A dermoscopy image has no up or left: a lesion rotated or mirrored is the same lesion, so averaging
the model's probabilities over all eight views removes orientation noise from its predictions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

PredictFn = Callable[[np.ndarray], np.ndarray]


def dihedral_views(images: np.ndarray) -> Iterator[np.ndarray]:
    """The 8 views of a batch (N, S, S, C): rot90 by k = 0..3, each without and with a left-right flip."""
    if images.shape[1] != images.shape[2]:
        raise ValueError(f"TTA needs square images, got {images.shape[1]}x{images.shape[2]}")
    for flipped in (images, images[:, :, ::-1]):
        for k in range(4):
            yield np.rot90(flipped, k, axes=(1, 2))


def predict_tta(predict_fn: PredictFn, images_uint8: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Mean of `predict_fn` probabilities over the 8 views of each image.

    `predict_fn` maps float32 images (N, S, S, 3) in 0..255 to probabilities (N, K). Images go
    through `batch_size` at a time, so at most one float32 view of one batch exists at once.
    """
    chunks = []
    for start in range(0, len(images_uint8), batch_size):
        batch = images_uint8[start : start + batch_size]
        views = [predict_fn(view.astype(np.float32)) for view in dihedral_views(batch)]
        chunks.append(np.mean(views, axis=0))
    return np.concatenate(chunks)
