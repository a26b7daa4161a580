"""Integration checks on the real HAM10000 files in ../shared/data, skipped where they are absent."""

import pytest

from helpers import REAL_DATA
from skinpamper.data.check import check_dataset
from skinpamper.data.load import load_dataset
from skinpamper.data.splits import shared_lesions, split_dataset

pytestmark = [
    pytest.mark.skipif(
        not (REAL_DATA / "hmnist_28_28_RGB.csv").is_file(),
        reason=f"real HAM10000 data not found at {REAL_DATA}",
    ),
    pytest.mark.slow,  # the whole dataset: seconds
]


def test_real_hmnist_counts_and_clean_split() -> None:
    data = load_dataset(REAL_DATA)
    assert data.images.shape == (10015, 28, 28, 3)
    assert data.meta["lesion_id"].nunique() == 7470
    assert data.class_counts().to_dict() == {
        "akiec": 327,
        "bcc": 514,
        "bkl": 1099,
        "df": 115,
        "mel": 1113,
        "nv": 6705,
        "vasc": 142,
    }
    split = split_dataset(data, seed=0)
    assert shared_lesions(data, split).empty
    duplicates = check_dataset(data, split).duplicates["image_ids"].tolist()
    assert sorted(duplicates) == ["ISIC_0029861, ISIC_0024366", "ISIC_0029938, ISIC_0024777"]
