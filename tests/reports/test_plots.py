"""Every plot returns a Figure with the expected axes, artists and labels, and saves as PNG."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from skinpamper.classes import CODES
from skinpamper.data.dataset import Dataset, empty_meta
from skinpamper.reports import plots
from skinpamper.reports.html import figure_png
from skinpamper.reports.trust import plot_risk_coverage, plot_subgroup_forest
from skinpamper.scoring.abstention import risk_coverage
from skinpamper.scoring.subgroups import subgroup_report

# Images per class: df has one (fewer than per_class), vasc none.
PER_CLASS = {"akiec": 3, "bcc": 2, "bkl": 2, "df": 1, "mel": 3, "nv": 5, "vasc": 0}


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    labels = np.repeat(np.arange(len(CODES)), [PER_CLASS[c] for c in CODES])
    n = len(labels)
    rng = np.random.default_rng(0)
    meta = pd.DataFrame(
        {
            "image_id": [f"i{i}" for i in range(n)],
            "lesion_id": [f"L{i}" for i in range(n)],
            "dx_type": ["histo", "follow_up", None, "consensus"] * (n // 4) + ["histo"] * (n % 4),
            "age": rng.choice([5.0, 40.0, 85.0, np.nan], size=n),
            "sex": ["male", "female", None] * (n // 3) + ["male"] * (n % 3),
            "localization": ["back", None] + ["face"] * (n - 2),
        }
    )
    images = rng.integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8)
    return Dataset(images, labels, meta, source="fixture")


def test_pixel_rows_show_each_class_in_one_row(dataset) -> None:
    fig = plots.plot_pixel_rows(dataset, per_class=2)
    assert len(fig.axes) == len(CODES)
    for i, (ax, code) in enumerate(zip(fig.axes, CODES, strict=True)):
        (image,) = ax.get_images()
        strip = np.asarray(image.get_array())
        assert strip.shape == (8, 2 * 8 + plots.GAP, 3)
        tiles = [strip[:, :8], strip[:, 8 + plots.GAP :]]
        own = {dataset.images[j].tobytes() for j in np.flatnonzero(dataset.labels == i)}
        shown = min(PER_CLASS[code], 2)
        assert all(tile.tobytes() in own for tile in tiles[:shown])  # raw pixels of that class
        assert all((tile == 255).all() for tile in tiles[shown:])  # unused slots stay white
        assert ax.texts[0].get_text() == f"{code}\n(n={PER_CLASS[code]})"


def test_class_counts_bars_match_counts(dataset) -> None:
    fig = plots.plot_class_counts(dataset)
    (ax,) = fig.axes
    assert [p.get_width() for p in ax.patches] == [PER_CLASS[c] for c in CODES]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(CODES)


def test_age_by_class_has_one_histogram_per_class(dataset) -> None:
    fig = plots.plot_age_by_class(dataset)
    assert len(fig.axes) == len(CODES)
    known = ~np.isnan(dataset.meta["age"].to_numpy())
    for i, ax in enumerate(fig.axes):
        assert sum(p.get_height() for p in ax.patches) == np.sum(known & (dataset.labels == i))


def test_value_count_plots_show_missing_values(dataset) -> None:
    for plot, column in ((plots.plot_sex_counts, "sex"), (plots.plot_localization_counts, "localization")):
        (ax,) = plot(dataset).axes
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels[-1] == "(missing)"
        expected = dataset.meta[column].value_counts().sum() + dataset.meta[column].isna().sum()
        assert sum(p.get_width() for p in ax.patches) == expected


def test_dx_type_shares_sum_to_100_per_class(dataset) -> None:
    (ax,) = plots.plot_dx_type_by_class(dataset).axes
    totals = np.zeros(len(CODES))
    for patch in ax.patches:
        totals[round(patch.get_y() + patch.get_height() / 2)] += patch.get_width()
    present = np.array([PER_CLASS[c] > 0 for c in CODES])
    assert totals[present] == pytest.approx(100.0)
    assert totals[~present] == pytest.approx(0.0)


def test_metadata_plots_say_when_there_is_no_metadata() -> None:
    bare = Dataset(np.zeros((2, 4, 4, 3), np.uint8), np.array([0, 5]), empty_meta(2), "bare")
    for plot in (plots.plot_age_by_class, plots.plot_sex_counts, plots.plot_dx_type_by_class):
        texts = [t.get_text() for ax in plot(bare).axes for t in ax.texts]
        assert texts and all(t.startswith("no ") for t in texts)


def test_history_plots_the_columns_that_exist() -> None:
    history = pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "loss": [1.0, 0.8, 0.7],
            "val_loss": [1.1, 0.9, 0.9],
            "accuracy": [0.5, 0.6, 0.7],
            "val_accuracy": [0.4, 0.5, 0.6],
            "val_balanced_accuracy": [0.2, 0.3, 0.35],
            "lr": [0.001, 0.0005, 0.0],
            "seconds": [3.0, 3.1, 2.9],
        }
    )
    fig = plots.plot_history(history)
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "Accuracy", "Balanced accuracy (mean recall)"]
    assert [len(ax.lines) for ax in fig.axes] == [2, 2, 1]
    assert list(fig.axes[0].lines[0].get_xdata()) == [1, 2, 3]
    assert len(plots.plot_history(pd.DataFrame({"epoch": [1]})).axes) == 1


def test_history_groups_per_class_recall_in_one_panel() -> None:
    recalls = {f"val_recall_{code}": [0.1, 0.2] for code in CODES}
    fig = plots.plot_history(pd.DataFrame({"epoch": [1, 2], "loss": [1.0, 0.9], **recalls}))
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "Validation recall per class"]
    assert [line.get_label() for line in fig.axes[1].lines] == list(CODES)


@pytest.mark.parametrize("normalise", [True, False])
def test_confusion_matrix_labels_and_cells(normalise: bool) -> None:
    cm = np.diag([3, 1, 1, 1, 2, 4, 1])
    cm[5, 4] = 4
    (ax, _colourbar) = plots.plot_confusion_matrix(cm, normalise).axes
    assert [t.get_text() for t in ax.get_xticklabels()] == list(CODES)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(CODES)
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 49
    assert texts[5 * 7 + 4] == ("0.50" if normalise else "4")
    assert np.asarray(ax.get_images()[0].get_array()).max() == (1.0 if normalise else 4)


def test_per_class_recall_draws_one_bar_per_class_and_series() -> None:
    test = {code: i / 10 for i, code in enumerate(CODES)}
    val = {**test, "vasc": None}  # not measured: no bar
    (ax,) = plots.plot_per_class_recall({"val": val, "test": test}).axes
    heights = [p.get_height() for p in ax.patches]
    assert heights[:6] == pytest.approx([val[c] for c in CODES[:6]]) and np.isnan(heights[6])
    assert heights[7:] == pytest.approx([test[c] for c in CODES])
    assert [t.get_text() for t in ax.get_xticklabels()] == list(CODES)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["val", "test"]
    assert figure_png(ax.figure).startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "plot",
    [
        plots.plot_pixel_rows,
        plots.plot_class_counts,
        plots.plot_age_by_class,
        plots.plot_sex_counts,
        plots.plot_localization_counts,
        plots.plot_dx_type_by_class,
    ],
)
def test_dataset_figures_save_as_png(dataset, plot) -> None:
    fig = plot(dataset)
    assert isinstance(fig, Figure)
    assert figure_png(fig).startswith(b"\x89PNG\r\n\x1a\n")


def test_one_panel_plots_draw_on_the_axes_given_and_return_it(dataset) -> None:
    cm = np.arange(49).reshape(7, 7)
    recalls = {"test": dict.fromkeys(CODES, 0.5)}
    fig = Figure(figsize=(12, 3), layout="constrained")
    grid = fig.subplots(1, 3)
    drawn = [
        plots.plot_class_counts(dataset, ax=grid[0]),
        plots.plot_confusion_matrix(cm, normalise=False, ax=grid[1]),
        plots.plot_per_class_recall(recalls, ax=grid[2]),
    ]
    assert drawn == list(grid)
    assert len(fig.axes) == 4  # the three given, and the confusion matrix's colour bar: no new figure
    assert [p.get_width() for p in grid[0].patches] == [PER_CLASS[c] for c in CODES]
    assert [int(t.get_text()) for t in grid[1].texts] == cm.ravel().tolist()
    assert [p.get_height() for p in grid[2].patches] == [0.5] * len(CODES)
    figure_png(fig)  # the caller's figure renders with them


def test_metadata_and_trust_plots_draw_on_the_axes_given(dataset) -> None:
    """The dataset's metadata bars and the trust figures of a report, laid out in one figure of the
    caller's: each returns the Axes it was given and draws there, and no other figure is made."""
    curve = risk_coverage(np.zeros(4, dtype=int), np.eye(7)[[0, 0, 1, 1]] * 0.6 + 0.4 / 7)
    y = np.arange(140) % 7
    report = subgroup_report(
        y, np.eye(7)[y] * 0.5 + 0.5 / 7, pd.DataFrame({"sex": ["a", "b"] * 70}), n_boot=20
    )
    fig = Figure(figsize=(16, 8), layout="constrained")
    grid = list(fig.subplots(2, 3).flat)
    drawn = [
        plots.plot_sex_counts(dataset, ax=grid[0]),
        plots.plot_localization_counts(dataset, ax=grid[1]),
        plots.plot_dx_type_by_class(dataset, ax=grid[2]),
        plot_risk_coverage(curve, 0.5, ax=grid[3]),
        plot_subgroup_forest(report, ax=grid[4]),
    ]
    assert drawn == grid[:5] and len(fig.axes) == 6
    assert sum(p.get_width() for p in grid[0].patches) == len(dataset)
    assert grid[3].get_title() == "Risk-coverage" and len(grid[3].lines) == 3
    assert [t.get_text().split(":")[0] for t in grid[4].get_yticklabels()] == ["sex", "sex"]
    figure_png(fig)


HISTORY = pd.DataFrame(
    {"epoch": [1, 2], "loss": [1.0, 0.9], "val_accuracy": [0.5, 0.6], "val_recall_mel": [0.1, 0.3]}
)


def test_several_panel_plots_draw_on_the_axes_given_and_return_them(dataset) -> None:
    fig = Figure(figsize=(14, 10), layout="constrained")
    rows, ages, history = fig.subfigures(1, 3)
    given = [rows.subplots(7, 1), ages.subplots(7, 1, sharex=True), history.subplots(3, 1)]
    drawn = [
        plots.plot_pixel_rows(dataset, per_class=2, axes=given[0]),
        plots.plot_age_by_class(dataset, axes=given[1]),
        plots.plot_history(HISTORY, axes=given[2]),
    ]
    assert drawn == [list(axes) for axes in given]
    assert len(fig.axes) == 17 and fig.get_suptitle() == ""  # nothing added, the caller's title left alone
    assert all(len(ax.get_images()) == 1 for ax in given[0])
    assert [ax.texts[0].get_text().split("\n")[0] for ax in given[0]] == list(CODES)
    known = ~np.isnan(dataset.meta["age"].to_numpy())
    assert [sum(p.get_height() for p in ax.patches) for ax in given[1]] == [
        np.sum(known & (dataset.labels == i)) for i in range(len(CODES))
    ]
    assert [ax.get_title() for ax in given[2]] == ["Loss", "Accuracy", "Validation recall per class"]
    assert [len(ax.lines) for ax in given[2]] == [1, 1, 1]
    figure_png(fig)


@pytest.mark.parametrize(
    ("plot", "needed"),
    [
        (lambda d, axes: plots.plot_pixel_rows(d, axes=axes), "plot_pixel_rows draws 7 panels"),
        (lambda d, axes: plots.plot_age_by_class(d, axes=axes), "plot_age_by_class draws 7 panels"),
        (
            lambda d, axes: plots.plot_history(HISTORY, axes=axes),
            r"plot_history draws 3 panels \(loss, accuracy, recall per class\)",
        ),
    ],
)
def test_a_wrong_number_of_axes_is_refused_with_the_number_needed(dataset, plot, needed) -> None:
    axes = Figure().subplots(2, 2)  # four, read row by row
    with pytest.raises(ValueError, match=f"^{needed}.*: give \\d Axes, not 4$"):
        plot(dataset, axes)
    assert not any(ax.has_data() for ax in axes.flat)  # refused before drawing


def test_a_history_without_metrics_says_so_on_the_one_axes_given() -> None:
    (ax,) = Figure().subplots(1, 1, squeeze=False)[0]
    assert plots.plot_history(pd.DataFrame({"epoch": [1]}), axes=[ax]) == [ax]
    assert ax.texts[0].get_text() == "no metrics in this dataset"
    with pytest.raises(ValueError, match=r"draws 1 panel \(no metrics\): give 1 Axes, not 2"):
        plots.plot_history(pd.DataFrame({"epoch": [1]}), axes=Figure().subplots(1, 2))
