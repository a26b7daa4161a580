import json
from pathlib import Path

import numpy as np
import pytest

from skinpamper.classes import NUM_CLASSES
from skinpamper.data.dataset import Dataset, empty_meta
from skinpamper.data.splits import Split, kfold_splits, shared_lesions, split_dataset
from skinpamper.errors import DataError


def synthetic(n_lesions: int = 400, seed: int = 0) -> Dataset:
    """Lesions with 1-3 images each and an imbalanced class mix, like HAM10000."""
    rng = np.random.default_rng(seed)
    lesion_class = rng.choice(NUM_CLASSES, n_lesions, p=[0.04, 0.05, 0.11, 0.02, 0.11, 0.65, 0.02])
    repeats = rng.integers(1, 4, n_lesions)
    labels = np.repeat(lesion_class, repeats)
    lesions = np.repeat([f"L{i}" for i in range(n_lesions)], repeats)
    meta = empty_meta(len(labels), [f"img{i}" for i in range(len(labels))])
    meta["lesion_id"] = lesions
    return Dataset(np.zeros((len(labels), 2, 2, 3), np.uint8), labels, meta, "synthetic")


def test_no_lesion_in_two_parts_and_every_image_once() -> None:
    data = synthetic()
    split = split_dataset(data, val=0.1, test=0.2, seed=3)
    assert shared_lesions(data, split).empty
    every = np.concatenate(list(split.parts().values()))
    assert sorted(every.tolist()) == list(range(len(data)))
    assert abs(len(split.test) / len(data) - 0.2) < 0.05
    assert abs(len(split.val) / len(data) - 0.1) < 0.05


def test_stratified_by_class() -> None:
    data = synthetic(1500)
    split = split_dataset(data, seed=1)
    overall = np.bincount(data.labels, minlength=NUM_CLASSES) / len(data)
    for idx in split.parts().values():
        share = np.bincount(data.labels[idx], minlength=NUM_CLASSES) / len(idx)
        assert np.abs(share - overall).max() < 0.03


def test_same_seed_same_split_other_seed_differs() -> None:
    data = synthetic()
    a, b, c = split_dataset(data, seed=7), split_dataset(data, seed=7), split_dataset(data, seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a.parts().values(), b.parts().values(), strict=True))
    assert not np.array_equal(a.test, c.test)


def test_kfold_tests_cover_every_image_once() -> None:
    data = synthetic()
    folds = kfold_splits(data, k=5, seed=0)
    tests = np.concatenate([f.test for f in folds])
    assert sorted(tests.tolist()) == list(range(len(data)))
    assert all(shared_lesions(data, f).empty for f in folds)


def test_saved_as_image_ids_and_reloaded(tmp_path: Path) -> None:
    data = synthetic()
    split = split_dataset(data, seed=2)
    split.save(tmp_path / "split.json", data)
    reordered = data.subset(np.arange(len(data))[::-1])
    again = Split.from_ids(json.loads((tmp_path / "split.json").read_text()), reordered, "split.json")
    ids = reordered.meta["image_id"].to_numpy()
    assert ids[again.test].tolist() == split.to_ids(data)["test"]


def test_random_split_leaks_and_is_reported() -> None:
    data = synthetic()
    idx = np.random.default_rng(0).permutation(len(data))
    leaky = Split(idx[:600], idx[600:700], idx[700:])
    assert len(shared_lesions(data, leaky)) > 10


def test_without_lesion_ids_split_is_refused() -> None:
    data = synthetic()
    data.meta["lesion_id"] = None
    with pytest.raises(DataError, match="no lesion_id"):
        split_dataset(data)
