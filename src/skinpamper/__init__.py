"""Skin Pamper: train, evaluate, explain and serve skin-lesion classifiers.

A research tool, not a medical device: nothing it prints is a diagnosis.
Importing the package does no work (no downloads, no folders, no prints, no Keras import). The
notebook API (`skinpamper.load_dataset`, `split`, `train`, `evaluate`, `Predictor`, ...; see
`skinpamper.api`) is imported on first use of one of its names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what editors and type checkers see; at run time __getattr__ imports on first use
    from skinpamper.api import (
        EvaluationResult,
        Prediction,
        Predictor,
        TrainedRun,
        evaluate,
        load_dataset,
        load_run,
        plot_age_by_class,
        plot_class_counts,
        plot_pixel_rows,
        split,
        train,
    )

__version__ = "0.1.0"

NOT_A_DIAGNOSIS = (
    "Research tool, not a medical device: this output is not a diagnosis. "
    "See a dermatologist about any skin lesion that worries you."
)

# Besides the two names defined here, the notebook API (skinpamper.api), imported by __getattr__.
__all__ = [
    "NOT_A_DIAGNOSIS",
    "EvaluationResult",
    "Prediction",
    "Predictor",
    "TrainedRun",
    "__version__",
    "evaluate",
    "load_dataset",
    "load_run",
    "plot_age_by_class",
    "plot_class_counts",
    "plot_pixel_rows",
    "split",
    "train",
]
API = tuple(name for name in __all__ if name not in ("NOT_A_DIAGNOSIS", "__version__"))


def __getattr__(name: str) -> Any:
    """`skinpamper.train` and the other API names, imported when first used (PEP 562)."""
    if name in API:
        import skinpamper.api as api

        return getattr(api, name)
    raise AttributeError(f"module 'skinpamper' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *API})
