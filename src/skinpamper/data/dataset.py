"""The one in-memory form every reader produces.

Images are uint8 (N, H, W, 3); labels use the canonical class order of `skinpamper.classes`;
`meta` has one row per image with image_id, lesion_id, dx_type, age, sex, localization (missing
values as NaN/None). DermaMNIST carries an official split instead of lesion ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from skinpamper.classes import CODES, NUM_CLASSES
from skinpamper.errors import DataError

META_COLUMNS: tuple[str, ...] = ("image_id", "lesion_id", "dx_type", "age", "sex", "localization")


@dataclass(frozen=True)
class Dataset:
    """Images, canonical labels and per-image metadata from one source."""

    images: np.ndarray  # uint8 (N, H, W, 3), RGB, at the size they were loaded at
    labels: np.ndarray  # (N,) class index into skinpamper.classes.CODES: akiec, bcc, bkl, df, mel, nv, vasc
    meta: pd.DataFrame  # a row per image: image_id, lesion_id, dx_type, age, sex, localization
    source: str  # the path it was read from
    official_split: np.ndarray | None = None  # DermaMNIST's own train/val/test per image; None elsewhere

    def __post_init__(self) -> None:
        n = len(self.labels)
        if n == 0:
            raise DataError(f"{self.source}: the dataset is empty (no images found)")
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[3] != 3:
            raise DataError(f"{self.source}: images must be uint8 (N, H, W, 3), got {self.images.shape}")
        if len(self.images) != n or len(self.meta) != n:
            raise DataError(f"{self.source}: {len(self.images)} images, {n} labels, {len(self.meta)} rows")
        missing = [c for c in META_COLUMNS if c not in self.meta.columns]
        if missing:
            raise DataError(f"{self.source}: metadata lacks columns {missing}")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of every image."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    @property
    def has_lesion_ids(self) -> bool:
        """True when every image has a lesion id, so splits can be grouped by lesion."""
        return bool(self.meta["lesion_id"].notna().all())

    def class_counts(self) -> pd.Series:
        """Images per class code, in canonical order, zeros included."""
        counts = np.bincount(self.labels, minlength=NUM_CLASSES)
        return pd.Series(counts, index=list(CODES), name="images")

    def subset(self, indices: np.ndarray) -> Dataset:
        """A new Dataset holding only `indices` (in that order)."""
        idx = np.asarray(indices)
        split = None if self.official_split is None else self.official_split[idx]
        return Dataset(
            images=self.images[idx],
            labels=self.labels[idx],
            meta=self.meta.iloc[idx].reset_index(drop=True),
            source=self.source,
            official_split=split,
        )


def empty_meta(n: int, image_ids: list[str] | None = None) -> pd.DataFrame:
    """Metadata for sources that only know images and labels."""
    meta = pd.DataFrame({c: pd.Series([None] * n, dtype=object) for c in META_COLUMNS})
    meta["age"] = np.nan
    if image_ids is not None:
        meta["image_id"] = image_ids
    return meta
