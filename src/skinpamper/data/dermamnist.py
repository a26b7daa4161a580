"""Read MedMNIST DermaMNIST `.npz` files (28, 64, 128 or 224 px), keeping the official split.

DermaMNIST has no lesion ids, so its official split is kept as it is; Skin Pamper cannot check it
for lesion leakage and says so wherever it reports the split.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from skinpamper.classes import DERMAMNIST_CODES, remap
from skinpamper.data.dataset import Dataset, empty_meta
from skinpamper.errors import DataError

SPLITS = ("train", "val", "test")


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    return np.stack(
        [np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.LANCZOS)) for im in images]
    )


def read_dermamnist(path: Path, size: int | None = None) -> Dataset:
    """All three official splits in one Dataset, resized to `size` when it differs from the file's."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            expected = [f"{s}_{k}" for s in SPLITS for k in ("images", "labels")]
            missing = [k for k in expected if k not in data.files]
            if missing:
                raise DataError(
                    f"{path}: missing keys {missing}; a DermaMNIST .npz has {', '.join(expected)}"
                )
            parts = {key: data[key] for key in expected}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from exc
    images, labels, split, ids = [], [], [], []
    for name in SPLITS:
        x, y = parts[f"{name}_images"], parts[f"{name}_labels"].reshape(-1)
        if x.ndim == 3:
            x = np.repeat(x[..., None], 3, axis=3)
        if x.ndim != 4 or x.shape[3] != 3 or x.shape[1] != x.shape[2] or len(x) != len(y):
            raise DataError(
                f"{path}: {name}_images has shape {x.shape} for {len(y)} labels; expected (N, S, S, 3)"
            )
        if x.dtype != np.uint8:
            raise DataError(f"{path}: {name}_images has dtype {x.dtype}; expected uint8")
        if len(y) and (y.min() < 0 or y.max() >= len(DERMAMNIST_CODES)):
            raise DataError(f"{path}: {name}_labels holds values outside 0..{len(DERMAMNIST_CODES) - 1}")
        images.append(x if size in (None, x.shape[1]) else _resize(x, size))
        labels.append(remap(y.astype(np.int64), DERMAMNIST_CODES))
        split += [name] * len(y)
        ids += [f"{name}_{i}" for i in range(len(y))]
    return Dataset(
        np.concatenate(images), np.concatenate(labels), empty_meta(len(ids), ids), str(path), np.array(split)
    )
