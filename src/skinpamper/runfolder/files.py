"""The names of a run folder's files, each with what it holds: the one place they are spelled.

`RUN_FOLDER_FILES` is data so that the documentation lists the files from here (docs/training.md,
through scripts/docs_hooks.py) and cannot drift from what training writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from skinpamper.classes import CODES

RUN_INFO = "run.json"
CONFIG, SPLIT, DATASET, ENVIRONMENT = "config.json", "split.json", "dataset.json", "environment.json"
HISTORY, STATE, METRICS = "history.csv", "state.json", "metrics.json"
CALIBRATION, METADATA_MODEL = "calibration.json", "metadata_model.json"
BEST_MODEL, LAST_MODEL = "model.keras", "last.keras"
OOD_DETECTOR, ABSTENTION = "ood_detector.npz", "abstention.json"
DERMOSCOPY_DETECTOR = "dermoscopy_detector.npz"
MEMBERS = "members.json"
ONNX_EXPORT = "model.onnx"

HISTORY_COLUMNS: tuple[str, ...] = (
    "epoch",
    "loss",
    "accuracy",
    "balanced_accuracy",  # of the un-augmented training subset (TRAIN_SCORED images), like val's
    "val_loss",
    "val_accuracy",
    "val_balanced_accuracy",
    *(f"val_recall_{code}" for code in CODES),
    "lr",  # at the epoch's last step
    "seconds",  # wall time of the epoch, validation included
)


@dataclass(frozen=True)
class RunFile:
    """One file of a run folder: its name, what it holds, and whether only a run has it."""

    name: str
    holds: str
    # A folder holding any file marked so holds a run (perhaps a half-made one). Not metrics.json, which
    # an evaluation's folder has too (evaluating twice into one folder is fine), nor the ONNX export.
    marks_a_run: bool = True


RUN_FOLDER_FILES: tuple[RunFile, ...] = (
    RunFile(RUN_INFO, "the run folder's format_version and the Skin Pamper that wrote it"),
    RunFile(CONFIG, "the resolved training settings (TrainConfig), data path made absolute"),
    RunFile(SPLIT, "image ids of train, val and test (ids survive re-ordering of the source)"),
    RunFile(
        DATASET,
        "source name, content digest, image count and size, class counts, split sizes, lesion grouping",
    ),
    RunFile(ENVIRONMENT, "Python, package versions, Keras backend, device, precision, git commit"),
    RunFile(HISTORY, "one row per finished epoch: losses, accuracies, validation recall per class"),
    RunFile(BEST_MODEL, "the best epoch by validation balanced accuracy, always float32"),
    RunFile(LAST_MODEL, "the last finished epoch with its optimizer state, for resume"),
    RunFile(STATE, "last finished epoch, best epoch and score, early stop, finished, dropout seeds"),
    RunFile(
        METRICS,
        "val and test scores of model.keras, with_metadata, abstention, subgroups, risk-coverage",
        marks_a_run=False,
    ),
    RunFile(CALIBRATION, "temperature fitted on the validation split, ECE and Brier before and after"),
    RunFile(METADATA_MODEL, "what age, sex and site say about the class (absent for data without them)"),
    RunFile(OOD_DETECTOR, "class means and whitening of the training split's features"),
    RunFile(
        DERMOSCOPY_DETECTOR,
        "the dermoscopy-vs-not detector on the same features (absent from runs saved before it: they "
        "refuse on the OOD distance alone)",
    ),
    RunFile(
        ABSTENTION,
        "OOD, dermoscopy, confidence and melanoma thresholds fitted on the validation split, and the targets",
    ),
    RunFile(MEMBERS, "an ensemble's member runs and their test scores (ensembles only)"),
    RunFile(ONNX_EXPORT, "the ONNX export, written by `skinpamper export`", marks_a_run=False),
)
RUN_ONLY_FILES = tuple(f.name for f in RUN_FOLDER_FILES if f.marks_a_run)


def run_folder_table() -> str:
    """The files as a Markdown table, for the documentation."""
    rows = [f"| `{f.name}` | {f.holds} |" for f in RUN_FOLDER_FILES]
    return "\n".join(["| file | holds |", "| --- | --- |", *rows])
