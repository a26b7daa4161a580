"""Read the Kaggle hmnist CSVs (pixel columns then `label`) joined with the metadata by row order.

The CSVs carry no image_id, so the join is by position; it is verified by checking every row's
label against the metadata's dx and refused where any row disagrees.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from skinpamper.classes import CODES, HMNIST_CODES, remap
from skinpamper.data.dataset import META_COLUMNS, Dataset
from skinpamper.data.metadata import read_csv, read_metadata
from skinpamper.errors import DataError

NAME_PATTERN = re.compile(r"hmnist_(\d+)_(\d+)_(RGB|L)\.csv$")


def _shape(path: Path, n_pixels: int) -> tuple[int, int]:
    """(side, channels) implied by the number of pixel columns."""
    for channels in (3, 1):
        side = math.isqrt(n_pixels // channels)
        if side * side * channels == n_pixels:
            match = NAME_PATTERN.search(path.name)
            if match is None or (match.group(3) == "RGB") == (channels == 3):
                return side, channels
    raise DataError(
        f"{path}: {n_pixels} pixel columns is not side*side*3 (RGB) or side*side (L); "
        "expected e.g. 2352 for 28x28 RGB or 784 for 28x28 grey"
    )


def _pixels(path: Path, table: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Pixel values as uint8, refusing non-numeric or out-of-range cells with their position."""
    values = table[columns]
    non_numeric = [c for c in columns if not pd.api.types.is_numeric_dtype(values[c])]
    if non_numeric:
        column = non_numeric[0]
        coerced = pd.to_numeric(values[column], errors="coerce")
        row = int((coerced.isna() & values[column].notna()).to_numpy().nonzero()[0][0])
        raise DataError(
            f"{path}: line {row + 2}, column {column}: non-numeric pixel value {values[column].iloc[row]!r}"
        )
    array = values.to_numpy()
    bad = (
        np.isnan(array) | (array < 0) | (array > 255)
        if array.dtype.kind == "f"
        else (array < 0) | (array > 255)
    )
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(
            f"{path}: line {row + 2}, column {columns[col]}: pixel value {array[row, col]} is not in 0..255"
        )
    return array.astype(np.uint8)


def read_hmnist(path: Path, metadata_path: Path) -> Dataset:
    """An hmnist CSV as a Dataset; greyscale files are repeated into three channels."""
    table = read_csv(path)
    if "label" not in table.columns:
        raise DataError(f"{path}: no 'label' column; an hmnist CSV has pixel columns then 'label'")
    columns = [c for c in table.columns if c != "label"]
    side, channels = _shape(path, len(columns))
    labels = pd.to_numeric(table["label"], errors="coerce")
    bad = labels.isna() | ~labels.isin(range(len(HMNIST_CODES)))
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise DataError(
            f"{path}: line {row + 2}: unknown label '{table['label'].iloc[row]}'; hmnist labels are 0..6 "
            f"({', '.join(f'{i} {c}' for i, c in enumerate(HMNIST_CODES))})"
        )
    pixels = _pixels(path, table, columns).reshape(len(table), side, side, channels)
    if channels == 1:
        pixels = np.repeat(pixels, 3, axis=3)
    canonical = remap(labels.to_numpy(dtype=np.int64), HMNIST_CODES)

    meta = read_metadata(metadata_path)
    if len(meta) != len(table):
        raise DataError(
            f"{metadata_path}: {len(meta)} rows but {path.name} has {len(table)}; "
            "the hmnist CSV is joined to the metadata by row order, so both must list every image"
        )
    expected = meta["dx"].map({c: i for i, c in enumerate(CODES)}).to_numpy()
    disagree = np.flatnonzero(expected != canonical)
    if disagree.size:
        row = int(disagree[0])
        raise DataError(
            f"{path}: line {row + 2}: label {CODES[canonical[row]]} but {metadata_path.name} line {row + 2} "
            f"({meta['image_id'].iloc[row]}) says {meta['dx'].iloc[row]}; {disagree.size} rows disagree, "
            "so the files are not in the same order (use the metadata file that came with the CSV)"
        )
    return Dataset(pixels, canonical, meta[list(META_COLUMNS)].copy(), source=str(path))
