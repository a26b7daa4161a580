"""Reading and splitting a dataset from a notebook: the library's loaders with the CLI's words."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from skinpamper.data.dataset import Dataset
from skinpamper.data.images import Progress
from skinpamper.data.load import load_dataset as read_dataset
from skinpamper.data.splits import Split, split_dataset
from skinpamper.imaging import Fit


@contextmanager
def decoding_bar(path: str | Path, shown: bool) -> Iterator[Progress | None]:
    """A tqdm bar on stderr while images are decoded; made on the first call, so a cached or CSV load,
    which never calls it, shows none."""
    if not shown:
        yield None
        return
    bars: list[tqdm] = []

    def update(done: int, total: int | None) -> None:
        if not bars:
            bars.append(tqdm(desc=f"decoding {Path(path).name}", unit="img", leave=False, file=sys.stderr))
        bars[0].total, bars[0].n = total, done
        bars[0].refresh()

    try:
        yield update
    finally:
        for bar in bars:
            bar.close()


def load_dataset(
    path: str | Path,
    image_size: int | None = None,
    format: str = "auto",
    fit: Fit = "squash",
    progress: bool = True,
) -> Dataset:
    """Read a dataset in any form HAM10000 comes in, as `skinpamper train --data PATH` does.

    `path` is the Kaggle folder (hmnist CSVs, JPEGs and `HAM10000_metadata.csv`), a folder of JPEGs
    with the metadata, a DermaMNIST `.npz`, images with an `image_id,dx` CSV, or class sub-folders;
    `format` forces one. `image_size` is the square side in pixels (default: the file's own for hmnist
    and DermaMNIST, else 28), and `fit` how a non-square photo becomes square (`squash`, `crop`, `pad`):
    give `train` the same `fit`, since the run records it for prediction. The first load is cached,
    so the next one takes milliseconds. Importing Skin Pamper and loading data never import Keras.

    Example:
        ```python
        import skinpamper

        dataset = skinpamper.load_dataset("../shared/data/ham10000")  # hmnist_28_28_RGB.csv
        dataset.images.shape, dataset.class_counts()  # (10015, 28, 28, 3), images per class
        dataset.meta.head()  # image_id, lesion_id, dx_type, age, sex, localization
        ```
    """
    with decoding_bar(path, progress) as update:
        return read_dataset(path, size=image_size, fmt=format, fit=fit, progress=update)


def split(dataset: Dataset, val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """Train, validation and test parts with no lesion in two of them, as `skinpamper train` draws them.

    Stratified by class and grouped by `lesion_id`, deterministic for a `seed`; DermaMNIST keeps its
    official split. Pass the result to `train`, or leave it out and `train` draws this same split
    from its own settings (`val_fraction`, `test_fraction`, `seed`).

    Example:
        ```python
        parts = skinpamper.split(dataset, seed=0)
        {name: len(rows) for name, rows in parts.parts().items()}  # about 70 / 10 / 20 %
        test_images = dataset.subset(parts.test)
        ```
    """
    return split_dataset(dataset, val_fraction, test_fraction, seed)
