"""The Python API for notebooks and scripts: a small, stable layer over the library, named as the CLI.

Every name here is also `skinpamper.NAME`, imported on first use, so `import skinpamper` stays light
and loading or plotting data never imports Keras; `train`, `evaluate` and a run folder's `Predictor`
do. Figures are matplotlib Figures: the value of a notebook cell shows inline, `.savefig()` saves it.

A front end, as the CLI is: train and evaluate call the workflows (`skinpamper.workflows`) the CLI
calls, so the two give the same answer; this layer adds the notebook's words and figures.
"""

# Re-exported as `name as name` (PEP 484) and in __all__; skinpamper.API lists the same names for the
# package root.
from skinpamper.api.datasets import load_dataset as load_dataset
from skinpamper.api.datasets import split as split
from skinpamper.api.evaluations import EvaluationResult as EvaluationResult
from skinpamper.api.evaluations import evaluate as evaluate
from skinpamper.api.runs import TrainedRun as TrainedRun
from skinpamper.api.runs import load_run as load_run
from skinpamper.api.runs import train as train
from skinpamper.reports.plots import plot_age_by_class as plot_age_by_class
from skinpamper.reports.plots import plot_class_counts as plot_class_counts
from skinpamper.reports.plots import plot_pixel_rows as plot_pixel_rows
from skinpamper.serving.predict import Prediction as Prediction
from skinpamper.serving.predict import Predictor as Predictor

__all__ = [
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
]
