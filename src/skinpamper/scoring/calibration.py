"""Temperature scaling: one scalar T that softens (T > 1) or sharpens (T < 1) a model's probabilities.

Networks trained with cross-entropy are usually overconfident; dividing the logits by a T fitted on
the validation split fixes most of that without changing any prediction (argmax is unchanged). The
models here end in a softmax, so log(probs) serve as logits: softmax(log p / T) equals softmax(z / T)
for the original logits z, because softmax ignores a per-row constant.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from skinpamper.scoring.clinical import brier_score, expected_calibration_error

# T is searched on log T in [-3, 3], i.e. T in [0.05, 20]: far beyond any useful correction.
LOG_T_BOUNDS = (-3.0, 3.0)
_EPS = 1e-12  # floor for probabilities a float32 softmax rounded to zero


def fit_temperature(probs: np.ndarray, y_true: np.ndarray) -> float:
    """The T > 0 minimising the mean negative log-likelihood of `y_true` under softmax(log probs / T)."""
    log_p = _log_probs(probs)
    y_true = np.asarray(y_true, dtype=np.int64)
    rows = np.arange(len(y_true))

    def nll(log_t: float) -> float:
        return float(-np.mean(log_softmax(log_p / np.exp(log_t), axis=1)[rows, y_true]))

    result = minimize_scalar(nll, bounds=LOG_T_BOUNDS, method="bounded")
    return float(np.exp(result.x))


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log probs / T): the calibrated probabilities, same argmax as `probs`."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return softmax(_log_probs(probs) / temperature, axis=1)


def temperature_effect(y_true: np.ndarray, probs: np.ndarray, temperature: float) -> dict[str, float]:
    """ECE and Brier score of `probs` before and after dividing their logits by `temperature`."""
    calibrated = apply_temperature(probs, temperature)
    return {
        "temperature": temperature,
        "ece_before": expected_calibration_error(y_true, probs),
        "ece_after": expected_calibration_error(y_true, calibrated),
        "brier_before": brier_score(y_true, probs),
        "brier_after": brier_score(y_true, calibrated),
    }


def calibration_record(probs: np.ndarray, y_true: np.ndarray, fitted_on: str) -> dict[str, float | str | int]:
    """Fit T on (probs, y_true) and say what it changed: the run stores this as calibration.json."""
    effect = temperature_effect(y_true, probs, fit_temperature(probs, y_true))
    return {**effect, "fitted_on": fitted_on, "n": len(y_true)}


def _log_probs(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), _EPS, 1.0))
