"""The logit-adjusted loss: what it computes, and that its prior comes from training labels only."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from skinpamper.training.losses import LogitAdjustedCrossEntropy, log_prior

RNG = np.random.default_rng(0)
PROBS = RNG.dirichlet(np.ones(7), size=16).astype(np.float32)
LABELS = RNG.integers(0, 7, size=16)


def test_a_uniform_prior_leaves_plain_cross_entropy() -> None:
    loss = LogitAdjustedCrossEntropy(np.full(7, np.log(1 / 7)))
    plain = keras.losses.SparseCategoricalCrossentropy()
    assert float(loss(LABELS, PROBS)) == pytest.approx(float(plain(LABELS, PROBS)), rel=1e-5)


def test_it_is_the_cross_entropy_of_prior_weighted_probabilities() -> None:
    prior = np.array([0.03, 0.05, 0.11, 0.01, 0.11, 0.67, 0.02])
    adjusted = PROBS * prior / (PROBS * prior).sum(axis=1, keepdims=True)
    expected = -np.log(adjusted[np.arange(16), LABELS]).mean()
    assert float(LogitAdjustedCrossEntropy(np.log(prior))(LABELS, PROBS)) == pytest.approx(expected, rel=1e-5)


def test_a_rare_class_costs_more_to_miss_than_a_common_one() -> None:
    """The same confident mistake is penalised more when the true class is rare: what evens recall out."""
    loss = LogitAdjustedCrossEntropy(log_prior(np.array([5] * 90 + [3] * 10)))
    probs = np.full((1, 7), 0.1, np.float32)
    probs[0, 0] = 0.4
    assert float(loss(np.array([3]), probs)) > float(loss(np.array([5]), probs))


def test_log_prior_counts_the_given_labels_and_keeps_absent_classes_finite() -> None:
    prior = np.exp(log_prior(np.array([5, 5, 5, 2])))
    assert prior[5] == pytest.approx(3 / 9) and prior[2] == pytest.approx(1 / 9)
    assert prior[0] == pytest.approx(1 / 9)  # absent: counted as one image, not log(0)


def test_trains_and_survives_a_save_and_load_round_trip(tmp_path) -> None:
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(inputs))
    model.compile(optimizer="adam", loss=LogitAdjustedCrossEntropy(log_prior(np.array([0, 5, 5]))))
    model.train_on_batch(RNG.normal(size=(4, 3)), np.array([0, 5, 5, 1]))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.loss, LogitAdjustedCrossEntropy)
    np.testing.assert_allclose(loaded.loss.log_prior, log_prior(np.array([0, 5, 5])))
