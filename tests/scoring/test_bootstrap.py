"""The vectorised bootstrap gives, for each resample, what scikit-learn gives on the images that
resample repeats: the report's intervals are the same figures as its point estimates."""

from __future__ import annotations

import numpy as np
import pytest

from skinpamper.scoring.bootstrap import CHUNK, lesion_weights
from skinpamper.scoring.clinical import BOOTSTRAPPED, bootstrap_ci, headline_metrics, resampled_headline


def _scored(n: int, seed: int, classes: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    logits = rng.normal(0, 1, (n, 7))
    logits[np.arange(n), y] += 1.5
    logits = np.round(logits, 1)  # ties, which the AUC counts half and the ROC cuts group
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs, np.array([f"L{i // 3}" for i in range(n)])


@pytest.mark.parametrize(("n", "classes"), [(120, 7), (25, 7), (12, 3), (6, 2)])
def test_each_resample_equals_scikit_learn_on_its_repeated_images(n: int, classes: int) -> None:
    y, probs, lesions = _scored(n, seed=n, classes=classes)
    weights = lesion_weights(lesions, 40, np.random.default_rng(1))
    samples = resampled_headline(weights, y, probs)
    for counts, sample in zip(weights, samples, strict=True):
        repeated = np.repeat(np.arange(n), counts.astype(int))
        expected = headline_metrics(y[repeated], probs[repeated])
        for name, value in zip(BOOTSTRAPPED, sample, strict=True):
            if expected[name] is None:
                assert np.isnan(value), name
            else:
                assert value == pytest.approx(expected[name], abs=1e-12), name


def test_intervals_do_not_depend_on_the_block_size() -> None:
    y, probs, lesions = _scored(90, seed=5)
    whole = bootstrap_ci(y, probs, lesions, CHUNK * 2 + 7, seed=3)
    weights = lesion_weights(lesions, CHUNK * 2 + 7, np.random.default_rng(3))
    samples = resampled_headline(weights, y, probs)  # every resample in one block
    for i, name in enumerate(BOOTSTRAPPED):
        assert whole[name] == pytest.approx(list(np.percentile(samples[:, i], [2.5, 97.5])))
