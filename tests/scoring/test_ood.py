"""The Mahalanobis OOD detector: fitted on training features, scores far points high, round-trips."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis

from skinpamper.errors import ConfigError
from skinpamper.scoring.ood import OODDetector, _whitening, fit_detector, fit_threshold


def _clusters(n: int = 600, dims: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    centres = rng.normal(0, 5, (3, dims))
    return centres[labels] + rng.normal(0, 1, (n, dims)), labels


def test_score_is_the_squared_mahalanobis_distance_to_the_nearest_class() -> None:
    features, labels = _clusters()
    detector = fit_detector(features, labels)
    means = np.stack([features[labels == c].mean(axis=0) for c in range(3)])
    precisions = [p @ p.T for p in detector.projections]
    point = features[0] + 0.5
    expected = min(mahalanobis(point, m, p) ** 2 for m, p in zip(means, precisions, strict=True))
    assert detector.score(point[None])[0] == pytest.approx(expected, rel=1e-9)


def test_each_class_has_its_own_spread_and_small_classes_borrow_the_pooled_one() -> None:
    """A class spread ten times wider is not strange at ten times the usual distance from its mean."""
    rng = np.random.default_rng(3)
    tight, wide = rng.normal(0, 1, (300, 4)), rng.normal(20, 10, (300, 4))
    few = rng.normal(-20, 1, (5, 4))
    detector = fit_detector(np.r_[tight, wide, few], np.r_[np.zeros(300), np.ones(300), np.full(5, 2)])
    far_in_wide = np.full((1, 4), 20.0 + 15.0)
    assert detector.score(far_in_wide)[0] < 10  # about 1.5 of its own standard deviations per axis
    features = np.r_[tight, wide, few]
    means = np.r_[[tight.mean(0)] * 300, [wide.mean(0)] * 300, [few.mean(0)] * 5]
    np.testing.assert_allclose(detector.projections[2], _whitening(features - means))  # pooled
    assert not np.allclose(detector.projections[0], detector.projections[2])


def test_points_far_from_every_class_score_higher_than_training_like_points() -> None:
    features, labels = _clusters()
    detector = fit_detector(features, labels)
    fresh, _ = _clusters(seed=1)  # new draws from the same clusters
    far = np.random.default_rng(2).normal(0, 30, (100, 8))
    threshold = fit_threshold(detector.score(fresh), keep=0.95)
    assert np.mean(detector.score(fresh) <= threshold) >= 0.95
    assert np.mean(detector.score(far) > threshold) > 0.95


def test_threshold_keeps_at_least_the_share_asked_for_even_on_few_images() -> None:
    scores = np.arange(8.0)
    assert np.mean(scores <= fit_threshold(scores, 0.95)) >= 0.95
    with pytest.raises(ValueError, match="keep"):
        fit_threshold(scores, 1.0)


def test_detector_round_trips_and_a_damaged_file_is_named(tmp_path: Path) -> None:
    detector = fit_detector(*_clusters())
    path = tmp_path / "ood_detector.npz"
    detector.save(path)
    loaded = OODDetector.load(path)
    np.testing.assert_array_equal(loaded.means, detector.means)
    np.testing.assert_array_equal(loaded.projections, detector.projections)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ConfigError, match="ood_detector.npz: not a readable OOD detector"):
        OODDetector.load(path)


def test_a_detector_saved_with_projected_centres_still_scores_the_same(tmp_path: Path) -> None:
    """Runs saved before class means were kept hold centres = mean @ projection (square projections)."""
    features, labels = _clusters()
    detector = fit_detector(features, labels)
    path = tmp_path / "old.npz"
    centres = np.einsum("cd,cdk->ck", detector.means, detector.projections)
    np.savez(path, centres=centres, projections=detector.projections)
    np.testing.assert_allclose(OODDetector.load(path).score(features), detector.score(features), rtol=1e-9)


def test_the_score_survives_float32_on_tiny_features() -> None:
    """Features with a large common offset and a tiny spread (ReLU features of a weakly trained network)
    are whitened by ~1e4: the in-graph score must come out of float32 close to its float64 value
    (projecting before subtracting the class mean was off by 1.5e-3 here)."""
    from skinpamper.models.ood_head import with_ood_score

    rng = np.random.default_rng(0)
    features = (1.0 + rng.normal(0, 1e-4, (600, 256))).astype(np.float32)
    labels = np.arange(600) % 3
    detector = fit_detector(features, labels)
    inputs = keras.Input((256,))
    head = keras.Model(inputs, keras.layers.Dense(7, activation="softmax", name="predictions")(inputs))
    scored = with_ood_score(head, detector.means, detector.projections)
    _, in_float32 = scored.predict(features, verbose=0)
    np.testing.assert_allclose(in_float32, detector.score(features), rtol=5e-4)


def test_features_that_vary_by_rounding_only_give_a_flat_detector_that_refuses_nothing() -> None:
    """An untrained network's features (MobileNetV3Small after one epoch: spread 5e-10 around 2e-3)
    would be whitened into scores made of float32 rounding, different in Keras and ONNX; the detector
    says it is flat and scores every image 0, so its threshold is 0 and no image is refused."""
    rng = np.random.default_rng(0)
    features = 2e-3 + rng.normal(0, 5e-10, (300, 64))
    labels = np.arange(300) % 3
    detector = fit_detector(features, labels)
    assert detector.flat
    far = rng.normal(0, 1, (5, 64))
    assert not detector.score(np.vstack([features, far])).any()
    assert fit_threshold(detector.score(features), 0.95) == 0
    assert not fit_detector(*_clusters()).flat
