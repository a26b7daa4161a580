"""The files `skinpamper evaluate --out` and `skinpamper.evaluate(out=)` write, each with what it holds.

The one list of them: the command's help and its "wrote" lines, the refusal to write into a run folder
and the documentation (scripts/docs_hooks.py puts it into docs/evaluation.md) read it, and a test
holds it to the files an evaluation really leaves. Plain data, so reading it imports nothing.
"""

from __future__ import annotations

# An evaluation folder's own metrics.json, not a run's: named once, here (runfolder keeps the run's).
EVALUATION_METRICS = "metrics.json"
STATUS_TABLE = "status_table.csv"
OUTPUTS: dict[str, str] = {
    EVALUATION_METRICS: (
        "the figures, plain and with 8-view test-time augmentation (the flips/rotations of the square; "
        "`--no-tta` to skip): accuracy, balanced accuracy, macro AUC, per-class sensitivity, "
        "specificity, precision, F1, ROC AUC and average precision, melanoma sensitivity at 80/90/95% "
        "specificity, the confusion matrix, expected calibration error and Brier score, with 95% "
        "bootstrap intervals resampled by lesion where lesion ids exist; plus the effect of the run's "
        "temperature on ECE and Brier"
    ),
    "predictions.csv": (
        "one row per image with every class probability (8-view TTA unless `--no-tta`), then, where the "
        "run has a metadata model and the set has age, sex or site, the same combined with them "
        "(`with_metadata_*`), then each image's `status` and `ood_score`"
    ),
    STATUS_TABLE: (
        "per status (ok, unfamiliar, uncertain, out_of_distribution) the share of images, balanced "
        "accuracy and melanoma sensitivity: how much of a clinic's images the model answers, and how "
        "well (runs with an OOD detector)"
    ),
    "report.html": (
        "one self-contained page (figures inlined, opens offline): headline metrics with intervals, "
        "plain and TTA side by side; per-class table; calibration with a reliability diagram before and "
        "after temperature scaling; confusion matrices; ROC and precision-recall per class; a Grad-CAM "
        "grid (the most confident correct and wrong example of each class); the most confident "
        "mistakes; the run's data, split, config and training curves; the not-a-diagnosis note"
    ),
    "summary.md": "a short table of the headline figures, to paste into a README",
    "model_card.md": "the run's model card with this evaluation's figures",
}


def outputs_text() -> str:
    """The file names as a phrase: "metrics.json, predictions.csv, ... and model_card.md"."""
    *first, last = OUTPUTS
    return f"{', '.join(first)} and {last}"


def outputs_markdown() -> str:
    """A Markdown list of the files, each with what it holds, for the documentation."""
    return "\n".join(f"- `{name}`: {text}." for name, text in OUTPUTS.items())
