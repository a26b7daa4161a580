"""Small synthetic datasets that a model can learn in an epoch or two, for training tests."""

from __future__ import annotations

import numpy as np

from skinpamper.data.dataset import Dataset, empty_meta


def tiny_dataset(per_class: int = 10, side: int = 28) -> Dataset:
    """Seven classes told apart by colour, with pairs of images sharing a lesion id."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(7), per_class)
    tint = rng.uniform(40, 220, (7, 3))
    noise = rng.normal(0, 25, (len(labels), side, side, 3))
    images = np.clip(tint[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8)
    meta = empty_meta(len(labels), [f"ISIC_{i:07d}" for i in range(len(labels))])
    meta["lesion_id"] = [f"HAM_{i // 2:07d}" for i in range(len(labels))]
    return Dataset(images=images, labels=labels, meta=meta, source="tiny")
