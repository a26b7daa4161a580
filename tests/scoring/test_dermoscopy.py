"""The dermoscopy detector: fit, score, save and load, and its synthetic negatives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skinpamper.errors import ConfigError
from skinpamper.scoring.dermoscopy import DermoscopyDetector, fit_dermoscopy_detector
from skinpamper.scoring.not_dermoscopy import not_dermoscopy


def test_detector_separates_two_clouds_and_survives_a_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    positives = rng.normal(0, 1, (300, 20)) + 5 * np.eye(20)[0]
    negatives = rng.normal(0, 1, (100, 20)) - 5 * np.eye(20)[0]
    negatives[:, 7] = 3.0  # a constant feature on one side
    detector = fit_dermoscopy_detector(positives, negatives, c=1.0)
    assert detector.score(positives).max() < 0 < detector.score(negatives).min()
    detector.save(tmp_path / "d.npz")
    loaded = DermoscopyDetector.load(tmp_path / "d.npz")
    np.testing.assert_allclose(loaded.score(negatives), detector.score(negatives))


def test_features_that_vary_by_rounding_do_not_magnify_it() -> None:
    """A weakly trained backbone's features vary by 5e-5 of their overall size, and ONNX computes them
    up to 2e-6 of that size away from Keras (EfficientNetB0 after one epoch from scratch). The
    log-odds must not amplify that past the export's 1% parity limit."""
    rng = np.random.default_rng(0)
    size = rng.uniform(1e-6, 3e-2, 400)
    scale = np.sqrt(np.mean(size**2))
    positives = size + 5e-5 * scale * rng.normal(0, 1, (300, 400))
    negatives = size + 5e-5 * scale * rng.normal(0.5, 1, (100, 400))
    detector = fit_dermoscopy_detector(positives, negatives)
    features = np.concatenate([positives, negatives])
    rounded = features + 2e-6 * scale * rng.choice([-1, 1], features.shape)
    before, after = detector.score(features), detector.score(rounded)
    assert np.max(np.abs(after - before) / np.maximum(np.abs(before), 1)) < 1e-2


def test_a_damaged_detector_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="not a readable dermoscopy detector"):
        DermoscopyDetector.load(tmp_path / "d.npz")


def test_negatives_are_varied_rgb_pictures_the_same_for_a_seed() -> None:
    first = not_dermoscopy(np.random.default_rng(0), 40)
    again = not_dermoscopy(np.random.default_rng(0), 40)
    assert len(first) >= 40 and all(p.mode == "RGB" for p in first)
    np.testing.assert_array_equal(np.asarray(first[-1]), np.asarray(again[-1]))
    assert len({np.asarray(p).mean().round(1) for p in first}) > 30
