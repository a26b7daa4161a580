"""Figures of one evaluation: ROC and precision-recall per class, reliability, Grad-CAM, mistakes.

Like plots.py these build `Figure`s directly (no pyplot) and take plain arrays, so they draw any
model's predictions on any labelled set; the one-panel curves draw on a caller's Axes too (`ax=`),
the others on the caller's Axes, as many as they have panels (`axes=`, see plots.py).
Classes are always the seven canonical ones in one order; a class with no image in the set is named
in the legend instead of drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from skinpamper.classes import CODES
from skinpamper.evaluation.explain import gradcam_examples, overlay_heatmap
from skinpamper.reports.plots import CLASS_COLOURS, given_axes, one_panel
from skinpamper.scoring.clinical import ECE_BINS, expected_calibration_error


def _curve_axes(ax: Axes | None, title: str, xlabel: str, ylabel: str) -> tuple[Figure | Axes, Axes]:
    shown, ax = one_panel(ax, (6.2, 5.4))
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return shown, ax


@overload
def plot_roc_curves(
    y_true: np.ndarray, probs: np.ndarray, title: str = ..., *, ax: None = None
) -> Figure: ...
@overload
def plot_roc_curves(y_true: np.ndarray, probs: np.ndarray, title: str = ..., *, ax: Axes) -> Axes: ...
def plot_roc_curves(
    y_true: np.ndarray, probs: np.ndarray, title: str = "ROC per class", *, ax: Axes | None = None
) -> Figure | Axes:
    """One-vs-rest ROC of each class with its AUC; the diagonal is a model that guesses.

    Drawn on `ax` when given, which is then returned."""
    shown, ax = _curve_axes(
        ax, title, "false positive rate (1 - specificity)", "true positive rate (sensitivity)"
    )
    ax.plot([0, 1], [0, 1], ":", color="0.5", label="chance")
    for c, code in enumerate(CODES):
        positive = np.asarray(y_true) == c
        if positive.all() or not positive.any():
            ax.plot([], [], color=CLASS_COLOURS[code], label=f"{code}: not defined (one-sided)")
            continue
        fpr, tpr, _ = roc_curve(positive, probs[:, c])
        auc = roc_auc_score(positive, probs[:, c])
        ax.plot(fpr, tpr, color=CLASS_COLOURS[code], label=f"{code}: AUC {auc:.3f} (n={positive.sum():,})")
    ax.legend(loc="lower right", fontsize="small")
    return shown


@overload
def plot_precision_recall(
    y_true: np.ndarray, probs: np.ndarray, title: str = ..., *, ax: None = None
) -> Figure: ...
@overload
def plot_precision_recall(y_true: np.ndarray, probs: np.ndarray, title: str = ..., *, ax: Axes) -> Axes: ...
def plot_precision_recall(
    y_true: np.ndarray,
    probs: np.ndarray,
    title: str = "Precision-recall per class",
    *,
    ax: Axes | None = None,
) -> Figure | Axes:
    """One-vs-rest precision-recall of each class with its average precision.

    Unlike ROC it shows how many false alarms come with each find for the rare classes. Drawn on `ax`
    when given, which is then returned.
    """
    shown, ax = _curve_axes(ax, title, "recall (sensitivity)", "precision")
    for c, code in enumerate(CODES):
        positive = np.asarray(y_true) == c
        if not positive.any():
            ax.plot([], [], color=CLASS_COLOURS[code], label=f"{code}: no images")
            continue
        precision, recall, _ = precision_recall_curve(positive, probs[:, c])
        ap = average_precision_score(positive, probs[:, c])
        ax.step(recall, precision, where="post", color=CLASS_COLOURS[code], label=f"{code}: AP {ap:.3f}")
    ax.legend(loc="lower left", fontsize="small")
    return shown


def _reliability_panel(ax: Axes, y_true: np.ndarray, probs: np.ndarray, title: str) -> None:
    """Accuracy per confidence bin against the diagonal, binned as ECE bins them."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
    bins = np.digitize(confidence, edges[1:-1], right=True)
    counts = np.bincount(bins, minlength=ECE_BINS)
    accuracy = np.bincount(bins, correct, ECE_BINS) / np.maximum(counts, 1)
    mean_confidence = np.bincount(bins, confidence, ECE_BINS) / np.maximum(counts, 1)
    filled = counts > 0
    bars = ax.bar(
        edges[:-1][filled], accuracy[filled], 1.0 / ECE_BINS, align="edge", color="tab:blue", label="accuracy"
    )
    ax.bar_label(bars, labels=[f"{n:,}" for n in counts[filled]], fontsize=7, padding=2)  # images per bin
    centres = (edges[:-1] + edges[1:]) / 2
    ax.plot(centres[filled], mean_confidence[filled], "o", color="tab:red", ms=4, label="mean confidence")
    ax.plot([0, 1], [0, 1], ":", color="0.3", label="perfect calibration")
    ece = expected_calibration_error(y_true, probs)
    ax.set_title(f"{title}: ECE {ece:.3f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left", fontsize="small")


@overload
def plot_reliability(
    y_true: np.ndarray, probs: np.ndarray, calibrated: np.ndarray | None = ..., *, axes: None = None
) -> Figure: ...
@overload
def plot_reliability(
    y_true: np.ndarray,
    probs: np.ndarray,
    calibrated: np.ndarray | None = ...,
    *,
    axes: Sequence[Axes] | np.ndarray,
) -> list[Axes]: ...
def plot_reliability(
    y_true: np.ndarray,
    probs: np.ndarray,
    calibrated: np.ndarray | None = None,
    *,
    axes: Sequence[Axes] | np.ndarray | None = None,
) -> Figure | list[Axes]:
    """Reliability diagram of `probs`, and beside it of `calibrated` (after temperature scaling) if given.

    Bars below the diagonal (and below their red confidence dot) are over-confidence: the model is
    surer than it is right. The number on a bar is its image count. On `axes` when given: one per
    diagram (two with `calibrated`), returned as a list.
    """
    y_true = np.asarray(y_true)
    panels = [("before temperature scaling", probs)]
    if calibrated is not None:
        panels.append(("after temperature scaling", calibrated))
    fig = None
    if axes is None:
        fig = Figure(figsize=(5 * len(panels), 4.8), layout="constrained")
        grid = list(fig.subplots(1, len(panels), squeeze=False)[0])
    else:
        grid = given_axes(axes, len(panels), "plot_reliability", ", ".join(title for title, _ in panels))
    for ax, (title, p) in zip(grid, panels, strict=True):
        _reliability_panel(ax, y_true, np.asarray(p, dtype=np.float64), title)
    if fig is None:
        return grid
    fig.suptitle(f"Reliability ({len(y_true):,} images, {ECE_BINS} confidence bins)")
    return fig


def _image_cell(ax: Axes, image: np.ndarray, title: str, colour: str = "black") -> None:
    ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8, color=colour)


def _empty_cell(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=8, color="0.4", transform=ax.transAxes)
    ax.set_axis_off()


@overload
def plot_gradcam_grid(
    images: np.ndarray, heatmaps: np.ndarray, y_true: np.ndarray, probs: np.ndarray, *, axes: None = None
) -> Figure: ...
@overload
def plot_gradcam_grid(
    images: np.ndarray,
    heatmaps: np.ndarray,
    y_true: np.ndarray,
    probs: np.ndarray,
    *,
    axes: Sequence[Axes] | np.ndarray,
) -> list[Axes]: ...
def plot_gradcam_grid(
    images: np.ndarray,
    heatmaps: np.ndarray,
    y_true: np.ndarray,
    probs: np.ndarray,
    *,
    axes: Sequence[Axes] | np.ndarray | None = None,
) -> Figure | list[Axes]:
    """A row per true class: a correct and a wrong example, each as the image and its Grad-CAM overlay.

    `images`, `heatmaps` (Grad-CAM of the predicted class), `y_true` and `probs` describe the chosen
    examples only; of several of one kind, the one `gradcam_examples` picks (the most confident) is shown.
    On `axes` when given: 28, a row of four per class (e.g. `subplots(7, 4)`), returned as a list.
    """
    y_true, probs = np.asarray(y_true), np.asarray(probs)
    y_pred = probs.argmax(axis=1)
    shown = {(int(y_true[i]), bool(y_pred[i] == y_true[i])): i for i in gradcam_examples(y_true, probs)}
    fig = None
    if axes is None:
        fig = Figure(figsize=(8.4, 1.3 + 1.75 * len(CODES)), layout="compressed")
        grid = list(fig.subplots(len(CODES), 4, squeeze=False).flat)
    else:
        cells = "a row per class: correct image, its Grad-CAM, wrong image, its Grad-CAM"
        grid = given_axes(axes, 4 * len(CODES), "plot_gradcam_grid", cells)
    rows = np.asarray(grid, dtype=object).reshape(len(CODES), 4)
    for c, code in enumerate(CODES):
        for column, correct in ((0, True), (2, False)):
            i = shown.get((c, correct))
            if i is None:
                _empty_cell(rows[c, column], f"{code}: no {'correct' if correct else 'wrong'} example")
                _empty_cell(rows[c, column + 1], "")
                continue
            label = f"{code} -> {CODES[y_pred[i]]} ({probs[i].max():.2f})"
            colour = "tab:green" if correct else "tab:red"
            _image_cell(rows[c, column], images[i], label, colour)
            _image_cell(rows[c, column + 1], overlay_heatmap(images[i], heatmaps[i]), "Grad-CAM", colour)
    if fig is None:
        return grid
    fig.suptitle("Grad-CAM per true class: correct (left) and wrong (right), true -> predicted (probability)")
    return fig


@overload
def plot_confident_mistakes(
    images: np.ndarray,
    y_true: np.ndarray,
    probs: np.ndarray,
    image_ids: list[str],
    count: int = ...,
    *,
    axes: None = None,
) -> Figure: ...
@overload
def plot_confident_mistakes(
    images: np.ndarray,
    y_true: np.ndarray,
    probs: np.ndarray,
    image_ids: list[str],
    count: int = ...,
    *,
    axes: Sequence[Axes] | np.ndarray,
) -> list[Axes]: ...
def plot_confident_mistakes(
    images: np.ndarray,
    y_true: np.ndarray,
    probs: np.ndarray,
    image_ids: list[str],
    count: int = 12,
    *,
    axes: Sequence[Axes] | np.ndarray | None = None,
) -> Figure | list[Axes]:
    """The `count` wrong predictions the model was surest of: where to look for label noise or blind spots.

    On `axes` when given: `count` of them, surest first, returned as a list; those left over when
    there are fewer mistakes are blanked.
    """
    y_true, probs = np.asarray(y_true), np.asarray(probs)
    y_pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(y_pred != y_true)
    chosen = wrong[np.argsort(-probs[wrong, y_pred[wrong]], kind="stable")][:count]
    fig = None
    if axes is None:
        columns = 6
        rows = max(1, -(-len(chosen) // columns))
        fig = Figure(figsize=(1.75 * columns, 0.7 + 2.0 * rows), layout="compressed")
        grid = list(fig.subplots(rows, columns, squeeze=False).flat)
    else:
        grid = given_axes(axes, count, "plot_confident_mistakes", f"count={count} mistakes")
    for ax, i in zip(grid, chosen, strict=False):
        title = f"{image_ids[i]}\n{CODES[y_true[i]]} -> {CODES[y_pred[i]]} ({probs[i, y_pred[i]]:.2f})"
        _image_cell(ax, images[i], title)
    for ax in grid[len(chosen) :]:
        ax.set_axis_off()
    if not len(chosen) and grid:
        grid[0].text(0.5, 0.5, "no mistakes", ha="center", va="center", transform=grid[0].transAxes)
    if fig is None:
        return grid
    fig.suptitle(
        f"Most confident mistakes ({len(chosen)} of {len(wrong):,}): true -> predicted (probability)"
    )
    return fig
