"""Temperature scaling on a toy whose overconfidence is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from skinpamper.scoring.calibration import apply_temperature, fit_temperature
from skinpamper.scoring.clinical import expected_calibration_error


def _nll(y: np.ndarray, probs: np.ndarray) -> float:
    return float(-np.mean(np.log(probs[np.arange(len(y)), y])))


def _overconfident(n: int = 3000, k: int = 7, sharpen: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(logits), but probabilities from softmax(sharpen * logits)."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 1.5, (n, k))
    true = softmax(logits, axis=1)
    y = (rng.random((n, 1)) > np.cumsum(true, axis=1)).sum(axis=1)
    return y, softmax(sharpen * logits, axis=1)


def test_overconfident_model_is_softened() -> None:
    y, probs = _overconfident()
    temperature = fit_temperature(probs, y)
    assert temperature == pytest.approx(3.0, rel=0.15)  # recovers the sharpening
    calibrated = apply_temperature(probs, temperature)
    assert expected_calibration_error(y, calibrated) < expected_calibration_error(y, probs) / 2
    assert _nll(y, calibrated) < _nll(y, probs)
    np.testing.assert_array_equal(calibrated.argmax(axis=1), probs.argmax(axis=1))


def test_temperature_one_is_identity_and_zero_is_refused() -> None:
    _, probs = _overconfident(n=10)
    np.testing.assert_allclose(apply_temperature(probs, 1.0), probs, atol=1e-12)
    with pytest.raises(ValueError, match="> 0"):
        apply_temperature(probs, 0.0)
