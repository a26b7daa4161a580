"""Train/validation/test splits grouped by lesion_id, so no lesion is seen in two splits.

HAM10000 has 10,015 images of 7,470 lesions; a random image split puts views of one lesion in both
train and test and inflates every metric. Splits are stratified by class, deterministic for a
seed, and saved as image ids (not row numbers) so they survive re-ordering of the source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from skinpamper.data.dataset import Dataset
from skinpamper.errors import DataError

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    """Row indices of each part; `grouped` is False when the source had no lesion ids."""

    train: np.ndarray  # row indices into the Dataset: `dataset.images[split.train]`
    val: np.ndarray  # picks the epoch kept and fits the temperature and the refusal thresholds
    test: np.ndarray  # held out: scored once, when training ends, and by `evaluate`
    grouped: bool = True  # no lesion in two parts; False when the source had no lesion ids
    note: str = ""  # how the split was made, when not grouped by lesion

    def parts(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def to_ids(self, dataset: Dataset) -> dict[str, list[str]]:
        """Image ids of each part, the form a run folder saves."""
        ids = dataset.meta["image_id"].astype(str).to_numpy()
        return {name: ids[idx].tolist() for name, idx in self.parts().items()}

    def save(self, path: Path, dataset: Dataset) -> None:
        path.write_text(json.dumps({"grouped": self.grouped, "note": self.note, **self.to_ids(dataset)}))

    @classmethod
    def from_ids(cls, saved: dict, dataset: Dataset, source: str) -> Split:
        """Re-create a saved split (`save`'s JSON, parsed) on `dataset`; refuses ids the dataset lacks."""
        position = {image_id: i for i, image_id in enumerate(dataset.meta["image_id"].astype(str))}
        parts = {}
        for name in SPLIT_NAMES:
            ids = saved.get(name)
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise DataError(f"{source}: damaged split: no list of {name} image ids")
            missing = [i for i in ids if i not in position]
            if missing:
                raise DataError(
                    f"{source}: {len(missing)} {name} image ids (e.g. {missing[0]}) are not in the dataset"
                )
            parts[name] = np.array([position[i] for i in ids], dtype=np.int64)
        if not isinstance(saved.get("grouped"), bool):
            raise DataError(f"{source}: damaged split: 'grouped' is not true or false")
        return cls(**parts, grouped=saved["grouped"], note=str(saved.get("note", "")))


def _groups(dataset: Dataset) -> np.ndarray:
    if not dataset.has_lesion_ids:
        raise DataError(
            f"{dataset.source}: some images have no lesion_id, so a lesion-grouped split is impossible; "
            "add lesion ids (HAM10000_metadata.csv) or use a source with an official split"
        )
    return dataset.meta["lesion_id"].astype(str).to_numpy()


def _take_fold(
    labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(rest, held) with about `fraction` of rows held out, whole lesions only, stratified."""
    n_splits = max(2, round(1 / fraction))
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    try:
        rest, held = next(folds.split(np.zeros(len(labels)), labels, groups))
    except ValueError as exc:  # sklearn refuses when every class has fewer members than folds
        raise DataError(f"too few images per class to hold out {fraction:.0%} by lesion ({exc})") from None
    return rest, held


def split_dataset(dataset: Dataset, val: float = 0.1, test: float = 0.2, seed: int = 0) -> Split:
    """A stratified, lesion-grouped train/val/test split; DermaMNIST keeps its official split."""
    if dataset.official_split is not None:
        parts = {n: np.flatnonzero(dataset.official_split == n) for n in SPLIT_NAMES}
        note = "official DermaMNIST split kept; it has no lesion ids, so lesion leakage cannot be checked"
        return Split(**parts, grouped=False, note=note)
    if not (0 < test < 1 and 0 < val < 1 and val + test < 1):
        raise DataError(f"split fractions val={val}, test={test} must be in (0, 1) and sum below 1")
    groups = _groups(dataset)
    rest, held_test = _take_fold(dataset.labels, groups, test, seed)
    inner_rest, held_val = _take_fold(dataset.labels[rest], groups[rest], val / (1 - test), seed + 1)
    return Split(np.sort(rest[inner_rest]), np.sort(rest[held_val]), np.sort(held_test))


def kfold_splits(dataset: Dataset, k: int = 5, val: float = 0.1, seed: int = 0) -> list[Split]:
    """k lesion-grouped folds; each fold's test part is one fold and val is carved from the rest."""
    groups = _groups(dataset)
    folds = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    splits = []
    for fold, (rest, test_idx) in enumerate(folds.split(np.zeros(len(dataset)), dataset.labels, groups)):
        inner, held_val = _take_fold(dataset.labels[rest], groups[rest], val / (1 - 1 / k), seed + 1 + fold)
        splits.append(Split(np.sort(rest[inner]), np.sort(rest[held_val]), np.sort(test_idx)))
    return splits


def shared_lesions(dataset: Dataset, split: Split) -> pd.DataFrame:
    """Lesions that appear in more than one part of `split` (empty when the split is clean)."""
    if not dataset.has_lesion_ids:
        return pd.DataFrame(columns=["lesion_id", "parts"])
    lesions = dataset.meta["lesion_id"].astype(str).to_numpy()
    rows = [(lesion, name) for name, idx in split.parts().items() for lesion in set(lesions[idx])]
    table = pd.DataFrame(rows, columns=["lesion_id", "part"])
    parts = table.groupby("lesion_id")["part"].agg(lambda s: ",".join(sorted(s)))
    shared = parts[parts.str.contains(",")]
    return shared.rename("parts").reset_index()
