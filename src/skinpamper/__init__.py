"""Skin Pamper: train, evaluate, explain and serve skin-lesion classifiers.

A research tool, not a medical device: nothing it prints is a diagnosis.
Importing the package does no work (no downloads, no folders, no prints, no Keras import). The
notebook API (`skinpamper.load_dataset`, `split`, `train`, `evaluate`, `Predictor`, ...; see
`skinpamper.api`) is imported on first use of one of its names.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

NOT_A_DIAGNOSIS = (
    "Research tool, not a medical device: this output is not a diagnosis. "
    "See a dermatologist about any skin lesion that worries you."
)

API = (
    "EvaluationResult",
    "Prediction",
    "Predictor",
    "TrainedRun",
    "evaluate",
    "load_dataset",
    "load_run",
    "plot_age_by_class",
    "plot_class_counts",
    "plot_pixel_rows",
    "split",
    "train",
)


def __getattr__(name: str) -> Any:
    """`skinpamper.train` and the other API names, imported when first used (PEP 562)."""
    if name in API:
        import skinpamper.api as api

        return getattr(api, name)
    raise AttributeError(f"module 'skinpamper' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *API})
