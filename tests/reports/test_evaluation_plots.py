"""Evaluation figures: what each draws, checked on small hand-made predictions."""

from __future__ import annotations

import re

import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score

from skinpamper.classes import CODES
from skinpamper.reports.evaluation_plots import (
    plot_confident_mistakes,
    plot_gradcam_grid,
    plot_precision_recall,
    plot_reliability,
    plot_roc_curves,
)
from skinpamper.reports.html import figure_png
from skinpamper.scoring.calibration import apply_temperature
from skinpamper.scoring.clinical import expected_calibration_error


def _probs(y_pred: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Probabilities with `confidence` on `y_pred` and the rest spread evenly."""
    probs = np.tile(((1 - confidence) / 6)[:, None], (1, 7))
    probs[np.arange(len(y_pred)), y_pred] = confidence
    return probs


@pytest.fixture
def predictions() -> tuple[np.ndarray, np.ndarray]:
    """Four images per class; the last of each is predicted as the next class, the rest correctly."""
    y_true = np.repeat(np.arange(7), 4)
    y_pred = y_true.copy()
    y_pred[3::4] = (y_true[3::4] + 1) % 7
    confidence = np.linspace(0.3, 0.95, len(y_true))
    return y_true, _probs(y_pred, confidence)


def _legend(fig: Figure) -> list[str]:
    return [text.get_text() for text in fig.axes[0].get_legend().get_texts()]


def test_roc_labels_each_class_with_its_auc_and_names_undefined_ones(predictions) -> None:
    y_true, probs = predictions
    labels = _legend(plot_roc_curves(y_true, probs))
    assert labels[0] == "chance" and len(labels) == 8
    for code, label in zip(CODES, labels[1:], strict=True):
        assert re.fullmatch(rf"{code}: AUC \d\.\d{{3}} \(n=4\)", label)

    perfect = np.eye(7)[y_true]
    no_vasc = y_true != 6
    labels = _legend(plot_roc_curves(y_true[no_vasc], perfect[no_vasc]))
    assert "akiec: AUC 1.000 (n=4)" in labels and "vasc: not defined (one-sided)" in labels


def test_precision_recall_legend_holds_sklearn_average_precision(predictions) -> None:
    y_true, probs = predictions
    labels = _legend(plot_precision_recall(y_true, probs))
    expected = average_precision_score(y_true == 4, probs[:, 4])
    assert f"mel: AP {expected:.3f}" in labels


def test_reliability_bars_are_bin_accuracy_and_both_panels_show_their_ece() -> None:
    # 10 images at confidence 0.9, of which 6 are right: one bar at height 0.6 holding 10 images.
    y_true = np.zeros(10, dtype=int)
    y_pred = np.array([0] * 6 + [1] * 4)
    probs = _probs(y_pred, np.full(10, 0.9))
    calibrated = apply_temperature(probs, 2.0)

    fig = plot_reliability(y_true, probs, calibrated)
    before, after = fig.axes
    heights = [patch.get_height() for patch in before.patches]
    assert heights == [pytest.approx(0.6)]
    assert [t.get_text() for t in before.texts] == ["10"]
    assert (
        before.get_title()
        == f"before temperature scaling: ECE {expected_calibration_error(y_true, probs):.3f}"
    )
    assert after.get_title().endswith(f"ECE {expected_calibration_error(y_true, calibrated):.3f}")
    assert len(plot_reliability(y_true, probs).axes) == 1


def test_gradcam_grid_shows_the_most_confident_example_of_each_kind(predictions) -> None:
    y_true, probs = predictions
    images = np.zeros((len(y_true), 8, 8, 3), dtype=np.uint8)
    heatmaps = np.random.default_rng(0).random((len(y_true), 8, 8)).astype(np.float32)
    keep = y_true != 2  # bkl has no example at all
    keep[1] = False  # akiec's correct examples left: rows 0 and 2, row 2 the more confident

    fig = plot_gradcam_grid(images[keep], heatmaps[keep], y_true[keep], probs[keep])
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 7 * 4
    assert titles[0] == f"akiec -> akiec ({probs[2, 0]:.2f})" and titles[1] == "Grad-CAM"
    assert titles[2] == f"akiec -> bcc ({probs[3, 1]:.2f})"
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "bkl: no correct example" in texts and "bkl: no wrong example" in texts


def test_mistakes_gallery_is_ordered_by_confidence_and_says_when_there_are_none(predictions) -> None:
    y_true, probs = predictions
    ids = [f"img{i}" for i in range(len(y_true))]
    images = np.zeros((len(y_true), 8, 8, 3), dtype=np.uint8)

    fig = plot_confident_mistakes(images, y_true, probs, ids, count=3)
    shown = [ax.get_title().split("\n")[0] for ax in fig.axes if ax.get_title()]
    assert shown == ["img27", "img23", "img19"]  # the wrong ones, surest first
    assert fig.axes[0].get_title() == f"img27\nvasc -> akiec ({probs[27, 0]:.2f})"

    perfect = np.eye(7)[y_true]
    empty = plot_confident_mistakes(images, y_true, perfect, ids)
    assert "no mistakes" in [t.get_text() for t in empty.axes[0].texts]


def test_every_figure_renders(predictions) -> None:
    y_true, probs = predictions
    images = np.zeros((len(y_true), 8, 8, 3), dtype=np.uint8)
    heatmaps = np.zeros((len(y_true), 8, 8), dtype=np.float32)
    figures = [
        plot_roc_curves(y_true, probs),
        plot_precision_recall(y_true, probs),
        plot_reliability(y_true, probs, probs),
        plot_gradcam_grid(images, heatmaps, y_true, probs),
        plot_confident_mistakes(images, y_true, probs, [str(i) for i in range(len(y_true))]),
    ]
    for figure in figures:
        assert figure_png(figure).startswith(b"\x89PNG")


def test_curves_draw_on_the_axes_given_and_return_it(predictions) -> None:
    y_true, probs = predictions
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    assert plot_roc_curves(y_true, probs, ax=left) is left
    assert plot_precision_recall(y_true, probs, ax=right) is right
    assert fig.axes == [left, right]
    assert [t.get_text() for t in left.get_legend().get_texts()] == _legend(plot_roc_curves(y_true, probs))
    assert right.get_title() == "Precision-recall per class"
    figure_png(fig)


def test_several_panel_figures_draw_on_the_axes_given_and_return_them(predictions) -> None:
    y_true, probs = predictions
    images = np.full((len(y_true), 8, 8, 3), 200, dtype=np.uint8)
    heatmaps = np.zeros((len(y_true), 8, 8), dtype=np.float32)
    ids = [f"img{i}" for i in range(len(y_true))]
    fig = Figure(figsize=(16, 12), layout="constrained")
    left, middle, right = fig.subfigures(1, 3)
    reliability, gradcam, mistakes = left.subplots(2, 1), middle.subplots(7, 4), right.subplots(2, 2)

    assert plot_reliability(y_true, probs, probs, axes=reliability) == list(reliability)
    assert plot_gradcam_grid(images, heatmaps, y_true, probs, axes=gradcam) == list(gradcam.flat)
    assert plot_confident_mistakes(images, y_true, probs, ids, count=4, axes=mistakes) == list(mistakes.flat)
    assert len(fig.axes) == 2 + 28 + 4 and fig.get_suptitle() == ""
    assert [ax.get_title().split(":")[0] for ax in reliability] == [
        "before temperature scaling",
        "after temperature scaling",
    ]
    own = plot_gradcam_grid(images, heatmaps, y_true, probs)
    assert [ax.get_title() for ax in gradcam.flat] == [ax.get_title() for ax in own.axes]
    assert all(len(ax.get_images()) == 1 for ax in gradcam.flat)
    assert [ax.get_title().split("\n")[0] for ax in mistakes.flat] == ["img27", "img23", "img19", "img15"]
    figure_png(fig)


def test_a_wrong_number_of_axes_is_refused_with_the_number_needed(predictions) -> None:
    y_true, probs = predictions
    images = np.zeros((len(y_true), 8, 8, 3), dtype=np.uint8)
    ids = [str(i) for i in range(len(y_true))]
    two = Figure().subplots(1, 2)
    with pytest.raises(ValueError, match=r"plot_reliability draws 1 panel \(before temperature scaling\)"):
        plot_reliability(y_true, probs, axes=two)
    with pytest.raises(ValueError, match="plot_gradcam_grid draws 28 panels .*: give 28 Axes, not 2"):
        plot_gradcam_grid(images, np.zeros((len(y_true), 8, 8)), y_true, probs, axes=two)
    with pytest.raises(ValueError, match=r"plot_confident_mistakes draws 12 panels \(count=12 mistakes\)"):
        plot_confident_mistakes(images, y_true, probs, ids, axes=two)
    assert not any(ax.has_data() for ax in two)
