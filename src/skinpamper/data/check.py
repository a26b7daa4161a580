"""Leakage checks for `skinpamper data check`: shared lesions and identical images across splits."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from skinpamper.data.dataset import Dataset
from skinpamper.data.splits import Split, shared_lesions


@dataclass(frozen=True)
class CheckReport:
    """What `data check` found: lesions in two parts, and groups of pixel-identical images."""

    shared_lesions: pd.DataFrame
    duplicates: pd.DataFrame  # image_ids, parts, cross_split

    @property
    def clean(self) -> bool:
        return self.shared_lesions.empty and not self.duplicates["cross_split"].any()


def duplicate_images(dataset: Dataset, split: Split | None = None) -> pd.DataFrame:
    """Groups of images with identical decoded pixels, with the split part of each member."""
    digests = [hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest() for image in dataset.images]
    part = np.full(len(dataset), "", dtype=object)
    if split is not None:
        for name, idx in split.parts().items():
            part[idx] = name
    table = pd.DataFrame({"digest": digests, "image_id": dataset.meta["image_id"].astype(str), "part": part})
    dup = table[table["digest"].duplicated(keep=False)]
    groups = dup.groupby("digest", sort=False).agg(image_ids=("image_id", ", ".join), parts=("part", list))
    groups["cross_split"] = groups["parts"].map(lambda p: len(set(p)) > 1)
    groups["parts"] = groups["parts"].map(lambda p: ", ".join(x or "-" for x in p))
    return groups.reset_index(drop=True)


def check_dataset(dataset: Dataset, split: Split) -> CheckReport:
    """Shared lesions between parts of `split`, and identical images within the set and across parts."""
    return CheckReport(shared_lesions(dataset, split), duplicate_images(dataset, split))
