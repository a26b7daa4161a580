"""`compare_runs`: trained runs side by side, from the files each run folder already holds.

The figures are the test-split scores that training wrote (metrics.json), the cost (history.csv's
epoch times) and the setup (config.json), so comparing needs neither the data nor the models. Runs
scored on different test splits are not comparable, which is why the test size is shown too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from skinpamper.classes import CODES
from skinpamper.data.summary import Table
from skinpamper.errors import ConfigError
from skinpamper.runfolder.files import METRICS
from skinpamper.training.run import Run

# Column of the comparison frame, its label in the printed table, and how its cells are written:
# "%" for a share, a format spec for other numbers, "" for text.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("model", "model", ""),
    ("image_size", "image size (px)", ""),
    ("epochs", "epochs", ""),
    ("train_minutes", "training minutes", ".1f"),
    ("test_images", "test images", ""),
    ("balanced_accuracy", "balanced accuracy", "%"),
    ("balanced_accuracy_with_metadata", "balanced accuracy with age, sex, site", "%"),
    ("accuracy", "accuracy", "%"),
    ("macro_auc", "macro AUC", ".3f"),
    *((f"recall_{code}", f"recall {code}", "%") for code in CODES),
)


def _run_row(path: Path) -> dict[str, object]:
    run = Run.open(path)
    if not run.file(METRICS).is_file():
        raise ConfigError(f"{run.file(METRICS)}: missing; the run has not finished training")
    test = run.metrics().get("test")
    if not isinstance(test, dict):
        raise ConfigError(f"{run.file(METRICS)}: no 'test' scores to compare")
    config, history = run.config(), run.history()
    fused = run.metrics().get("with_metadata", {}).get("test", {})
    return {
        "model": config.model,
        "image_size": config.image_size,
        "epochs": len(history),
        "train_minutes": sum(row.get("seconds", 0.0) for row in history) / 60,
        "test_images": test["n"],
        "balanced_accuracy": test["balanced_accuracy"],
        "balanced_accuracy_with_metadata": fused.get("balanced_accuracy"),  # None: no metadata model
        "accuracy": test["accuracy"],
        "macro_auc": test.get("macro_auc"),
        **{f"recall_{code}": test["per_class_recall"].get(code) for code in CODES},
    }


def compare_runs(run_dirs: Sequence[str | Path]) -> pd.DataFrame:
    """One row per run, in the order given; `run` is the folder name, or its path where names repeat."""
    paths = [Path(p) for p in run_dirs]
    frame = pd.DataFrame([_run_row(p) for p in paths])
    names = [p.resolve().name for p in paths]
    unique = len(set(names)) == len(names)
    frame.insert(0, "run", names if unique else [str(p) for p in paths])
    return frame


def _cell(value: object, kind: str) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "n/a"
    if kind == "%":
        return f"{100 * float(value):.1f}%"
    return format(value, kind) if kind else str(value)


def comparison_table(frame: pd.DataFrame) -> Table:
    """Runs as columns, figures as rows: a few runs with many figures read best side by side."""
    rows = tuple((label, *(_cell(value, kind) for value in frame[column])) for column, label, kind in ROWS)
    note = "Test split scores from each run's metrics.json; compare runs only on the same test split."
    return Table("Runs compared", ("metric", *frame["run"]), rows, "l" + "r" * len(frame), note)
