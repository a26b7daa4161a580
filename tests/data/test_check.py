import numpy as np

from skinpamper.data.check import check_dataset
from skinpamper.data.dataset import Dataset, empty_meta
from skinpamper.data.splits import Split


def test_identical_images_found_within_and_across_parts() -> None:
    images = np.random.default_rng(0).integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
    images[3] = images[0]  # across parts
    images[5] = images[4]  # within test
    meta = empty_meta(6, [f"i{k}" for k in range(6)])
    meta["lesion_id"] = ["a", "b", "c", "a", "d", "e"]
    data = Dataset(images, np.zeros(6, np.int64), meta, "fixture")
    split = Split(np.array([0, 1]), np.array([2]), np.array([3, 4, 5]))
    report = check_dataset(data, split)
    assert report.duplicates["image_ids"].tolist() == ["i0, i3", "i4, i5"]
    assert report.duplicates["cross_split"].tolist() == [True, False]
    assert report.shared_lesions["lesion_id"].tolist() == ["a"]
    assert not report.clean
