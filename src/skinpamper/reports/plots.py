"""Figures of datasets and runs, returned as matplotlib Figures for the caller to save or embed.

Figures are built with `matplotlib.figure.Figure` directly, never pyplot: no global figure registry,
no GUI backend, safe in servers and tests; saving to PNG uses the Agg renderer. A one-panel figure
also draws on an Axes the caller gives (`ax=`, as scikit-learn's displays and pandas take one) and
then returns that Axes, so that it can sit in a grid of the caller's own. A figure of several panels
draws, likewise, on as many Axes of the caller's (`axes=`: a list, or the array `subplots` returns,
read row by row), returns them as a list, and leaves the caller's figure title alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from skinpamper.classes import CODES
from skinpamper.data.dataset import Dataset

# One colour per class, the same in every figure.
CLASS_COLOURS: dict[str, tuple[float, ...]] = {
    code: mpl.colormaps["tab10"](i) for i, code in enumerate(CODES)
}
MISSING_COLOUR = "0.75"
GAP = 2  # white pixels between sample images


def one_panel(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure | Axes, Axes]:
    """(what the plot returns, where it draws): the caller's Axes twice, else a new Figure (constrained
    layout, `figsize` inches) and its one Axes."""
    if ax is not None:
        return ax, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots()


def given_axes(axes: Sequence[Axes] | np.ndarray, needed: int, plot: str, panels: str) -> list[Axes]:
    """The caller's Axes in drawing order, refused unless there are exactly `needed`: a missing one
    would drop a panel silently and a spare one would stay empty. `panels` says what they hold."""
    given = list(np.ravel(np.asarray(axes, dtype=object)))
    if len(given) != needed:
        drawn = f"{needed} panel{'s' * (needed != 1)} ({panels})"
        raise ValueError(f"{plot} draws {drawn}: give {needed} Axes, not {len(given)}")
    return given


def _no_data(ax: Axes, what: str) -> None:
    """Say so on the axes instead of drawing an empty chart (e.g. DermaMNIST has no metadata)."""
    ax.text(0.5, 0.5, f"no {what} in this dataset", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def _row_label(ax: Axes, text: str) -> None:
    """A horizontal label left of `ax`; as an axes text it is kept inside the figure by the layout."""
    ax.text(-0.02, 0.5, text, transform=ax.transAxes, ha="right", va="center")


def _strip(images: np.ndarray, count: int) -> np.ndarray:
    """`count` image slots side by side with white gaps; unused slots stay white."""
    height, width = images.shape[1:3]
    strip = np.full((height, count * (width + GAP) - GAP, 3), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        strip[:, i * (width + GAP) : i * (width + GAP) + width] = image
    return strip


@overload
def plot_pixel_rows(
    dataset: Dataset, per_class: int = ..., seed: int = ..., *, axes: None = None
) -> Figure: ...
@overload
def plot_pixel_rows(
    dataset: Dataset, per_class: int = ..., seed: int = ..., *, axes: Sequence[Axes] | np.ndarray
) -> list[Axes]: ...
def plot_pixel_rows(
    dataset: Dataset, per_class: int = 8, seed: int = 0, *, axes: Sequence[Axes] | np.ndarray | None = None
) -> Figure | list[Axes]:
    """Random raw images of each class, one row per class, pixels shown unsmoothed as the model sees them.

    On `axes` when given: seven, one per class in `CODES` order, returned as a list.

    Example:
        ```python
        dataset = skinpamper.load_dataset("../shared/data/ham10000")
        skinpamper.plot_pixel_rows(dataset, per_class=10)  # shows inline in a notebook
        ```
    """
    rng = np.random.default_rng(seed)
    height, width = dataset.image_size
    fig = None
    if axes is None:
        # "compressed" packs fixed-aspect images and keeps the row labels inside the figure.
        size = (1.0 + per_class * 1.1 * width / height, 0.6 + 1.1 * len(CODES))
        fig = Figure(figsize=size, layout="compressed")
        grid = list(fig.subplots(len(CODES), 1, squeeze=False)[:, 0])
    else:
        grid = given_axes(axes, len(CODES), "plot_pixel_rows", "one per class")
    for i, (ax, code) in enumerate(zip(grid, CODES, strict=True)):
        rows = np.flatnonzero(dataset.labels == i)
        chosen = np.sort(rng.choice(rows, size=min(per_class, len(rows)), replace=False))
        ax.imshow(_strip(dataset.images[chosen], per_class), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        _row_label(ax, f"{code}\n(n={len(rows):,})")
    if fig is None:
        return grid
    fig.suptitle(f"Random images per class ({height}x{width} px)")
    return fig


@overload
def plot_class_counts(dataset: Dataset, *, ax: None = None) -> Figure: ...
@overload
def plot_class_counts(dataset: Dataset, *, ax: Axes) -> Axes: ...
def plot_class_counts(dataset: Dataset, *, ax: Axes | None = None) -> Figure | Axes:
    """Images per class, with shares, to show the class imbalance at a glance; on `ax` when given.

    Example:
        ```python
        skinpamper.plot_class_counts(dataset).savefig("classes.png")
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
        skinpamper.plot_class_counts(dataset, ax=left)  # beside a figure of your own
        ```
    """
    counts = dataset.class_counts()
    shown, ax = one_panel(ax, (7, 3.8))
    bars = ax.barh(CODES, counts.to_numpy(), color=[CLASS_COLOURS[c] for c in CODES])
    ax.bar_label(bars, labels=[f"{n:,} ({100 * n / counts.sum():.1f}%)" for n in counts], padding=3)
    ax.invert_yaxis()
    ax.set_xlim(0, counts.max() * 1.25)
    ax.set_xlabel("images")
    ax.set_ylabel("class")
    ax.set_title(f"Images per class ({len(dataset):,} images)")
    return shown


@overload
def plot_age_by_class(dataset: Dataset, *, axes: None = None) -> Figure: ...
@overload
def plot_age_by_class(dataset: Dataset, *, axes: Sequence[Axes] | np.ndarray) -> list[Axes]: ...
def plot_age_by_class(
    dataset: Dataset, *, axes: Sequence[Axes] | np.ndarray | None = None
) -> Figure | list[Axes]:
    """Histogram of age per class (own y scale each, so small classes stay visible).

    On `axes` when given: seven, one per class in `CODES` order, returned as a list; all get the same
    age bins, so a shared x axis is the caller's choice.

    Example:
        ```python
        skinpamper.plot_age_by_class(dataset)
        left, right = plt.figure(figsize=(13, 9), layout="constrained").subfigures(1, 2)
        skinpamper.plot_age_by_class(dataset, axes=left.subplots(7, 1, sharex=True))
        skinpamper.plot_class_counts(dataset, ax=right.subplots())  # beside it
        ```
    """
    ages = pd.to_numeric(dataset.meta["age"], errors="coerce").to_numpy(dtype=float)
    fig = None
    if axes is None:
        fig = Figure(figsize=(7, 1.3 * len(CODES) + 0.8), layout="constrained")
        grid = list(fig.subplots(len(CODES), 1, sharex=True, squeeze=False)[:, 0])
    else:
        grid = given_axes(axes, len(CODES), "plot_age_by_class", "one per class")
    shown = grid if fig is None else fig
    known = ages[~np.isnan(ages)]
    if known.size == 0:
        for ax in grid:
            _no_data(ax, "ages")
        return shown
    bins = np.arange(np.floor(known.min() / 5) * 5, known.max() + 10, 5)
    for i, (ax, code) in enumerate(zip(grid, CODES, strict=True)):
        of_class = ages[(dataset.labels == i) & ~np.isnan(ages)]
        ax.hist(of_class, bins=bins, color=CLASS_COLOURS[code])
        # Label inside the axes: a row label on the left would collide with the count ticks.
        ax.text(0.01, 0.92, f"{code} (n={of_class.size:,})", transform=ax.transAxes, va="top", ha="left")
        ax.yaxis.set_major_locator(MaxNLocator(3, integer=True))
    grid[-1].set_xlabel("age (years, 5-year bins)")
    if fig is not None:
        missing = int(np.isnan(ages).sum())
        fig.suptitle(f"Images by age, per class ({missing:,} images without an age left out)")
    return shown


def _counts_with_missing(column: pd.Series) -> pd.Series:
    counts = column.value_counts()
    missing = int(column.isna().sum())
    return pd.concat([counts, pd.Series({"(missing)": missing})]) if missing else counts


def _plot_value_counts(
    dataset: Dataset, column: str, title: str, height: float, ax: Axes | None
) -> Figure | Axes:
    """Horizontal bars of one metadata column's values, largest first, missing values in grey."""
    counts = _counts_with_missing(dataset.meta[column])
    shown, ax = one_panel(ax, (7, height))
    if counts.index.equals(pd.Index(["(missing)"])):
        _no_data(ax, column)
        return shown
    colours = [MISSING_COLOUR if v == "(missing)" else "tab:blue" for v in counts.index]
    bars = ax.barh([str(v) for v in counts.index], counts.to_numpy(), color=colours)
    ax.bar_label(bars, labels=[f"{n:,}" for n in counts], padding=3)
    ax.invert_yaxis()
    ax.set_xlim(0, counts.max() * 1.15)
    ax.set_xlabel("images")
    ax.set_ylabel(column)
    ax.set_title(title)
    return shown


@overload
def plot_sex_counts(dataset: Dataset, *, ax: None = None) -> Figure: ...
@overload
def plot_sex_counts(dataset: Dataset, *, ax: Axes) -> Axes: ...
def plot_sex_counts(dataset: Dataset, *, ax: Axes | None = None) -> Figure | Axes:
    """Images per recorded sex; on `ax` when given."""
    return _plot_value_counts(dataset, "sex", "Images by sex", 2.6, ax)


@overload
def plot_localization_counts(dataset: Dataset, *, ax: None = None) -> Figure: ...
@overload
def plot_localization_counts(dataset: Dataset, *, ax: Axes) -> Axes: ...
def plot_localization_counts(dataset: Dataset, *, ax: Axes | None = None) -> Figure | Axes:
    """Images per body site; on `ax` when given."""
    n = dataset.meta["localization"].nunique() + 1
    title = "Images by body site (localization)"
    return _plot_value_counts(dataset, "localization", title, 1.2 + 0.3 * n, ax)


@overload
def plot_dx_type_by_class(dataset: Dataset, *, ax: None = None) -> Figure: ...
@overload
def plot_dx_type_by_class(dataset: Dataset, *, ax: Axes) -> Axes: ...
def plot_dx_type_by_class(dataset: Dataset, *, ax: Axes | None = None) -> Figure | Axes:
    """Share of each confirmation method within each class: histopathology is the most reliable label.
    On `ax` when given."""
    shown, ax = one_panel(ax, (8, 4))
    method = dataset.meta["dx_type"].fillna("(missing)").astype(str).to_numpy()
    if (method == "(missing)").all():
        _no_data(ax, "dx_type")
        return shown
    table = pd.crosstab(pd.Categorical.from_codes(dataset.labels, CODES), method)
    table = table[table.sum().sort_values(ascending=False).index]
    shares = 100 * table.div(table.sum(axis=1).replace(0, 1), axis=0)
    labels = [f"{code} (n={n:,})" for code, n in table.sum(axis=1).items()]
    left = np.zeros(len(shares))
    palette = mpl.colormaps["Set2"]
    for j, name in enumerate(shares.columns):
        colour = MISSING_COLOUR if name == "(missing)" else palette(j)
        ax.barh(labels, shares[name].to_numpy(), left=left, color=colour, label=name)
        left += shares[name].to_numpy()
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the class's images (%)")
    ax.set_ylabel("class")
    ax.set_title("How each diagnosis was confirmed (dx_type)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), title="dx_type", frameon=False)
    return shown


# Known per-epoch metrics in display order; any other column is plotted after them.
HISTORY_TITLES: dict[str, str] = {
    "loss": "Loss",
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy (mean recall)",
}
NOT_METRICS = ("epoch", "lr", "learning_rate", "seconds")
RECALL_PREFIX = "val_recall_"  # per-class validation recall, one column per class code


def _panel_grid(panels: int) -> tuple[Figure, list[Axes]]:
    """One row for up to three panels, else a grid two wide (a long row would shrink every panel)."""
    columns = panels if panels <= 3 else 2
    rows = -(-panels // columns)
    fig = Figure(figsize=(4.4 * columns, 0.6 + 3.4 * rows), layout="constrained")
    axes = list(fig.subplots(rows, columns, squeeze=False).flat)
    for ax in axes[panels:]:
        ax.remove()
    return fig, axes[:panels]


@overload
def plot_history(history: pd.DataFrame, *, axes: None = None) -> Figure: ...
@overload
def plot_history(history: pd.DataFrame, *, axes: Sequence[Axes] | np.ndarray) -> list[Axes]: ...
def plot_history(
    history: pd.DataFrame, *, axes: Sequence[Axes] | np.ndarray | None = None
) -> Figure | list[Axes]:
    """One panel per metric, training and validation together so over-fitting shows as a gap.

    On `axes` when given, returned as a list: one per metric (loss, accuracy, balanced accuracy, then
    any other, as the history holds them) and a last one for validation recall per class if recorded;
    one for a history without metrics. A wrong number is refused with the number needed.
    """
    recalls = [f"{RECALL_PREFIX}{code}" for code in CODES if f"{RECALL_PREFIX}{code}" in history.columns]
    metrics = [c for c in history.columns if c not in NOT_METRICS and c not in recalls]
    bases = list(dict.fromkeys(c.removeprefix("val_") for c in metrics))
    bases.sort(key=lambda b: list(HISTORY_TITLES).index(b) if b in HISTORY_TITLES else len(HISTORY_TITLES))
    panels = len(bases) + bool(recalls)
    fig = None
    if axes is not None:
        names = ", ".join(bases + ["recall per class"] * bool(recalls)) or "no metrics"
        grid = given_axes(axes, max(panels, 1), "plot_history", names)
    elif panels == 0:
        fig = Figure(figsize=(5, 3), layout="constrained")
        grid = [fig.subplots()]
    else:
        fig, grid = _panel_grid(panels)
    shown = grid if fig is None else fig
    if panels == 0:
        _no_data(grid[0], "metrics")
        return shown
    epochs = history["epoch"].to_numpy() if "epoch" in history.columns else np.arange(1, len(history) + 1)
    for ax, base in zip(grid, bases, strict=False):
        for column, label, style in ((base, "train", "-"), (f"val_{base}", "validation", "--")):
            if column in history.columns:
                ax.plot(epochs, history[column].to_numpy(dtype=float), style, marker=".", label=label)
        ax.set_title(HISTORY_TITLES.get(base, base.replace("_", " ").capitalize()))
        ax.set_ylabel(base.replace("_", " "))
    if recalls:
        ax = grid[-1]
        for column in recalls:
            code = column.removeprefix(RECALL_PREFIX)
            values = history[column].to_numpy(dtype=float)
            ax.plot(epochs, values, marker=".", color=CLASS_COLOURS[code], label=code)
        ax.set_title("Validation recall per class")
        ax.set_ylabel("recall")
        ax.set_ylim(-0.02, 1.02)
    for ax in grid:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", ncols=2 if ax is grid[-1] and recalls else 1)
    if fig is not None:
        fig.suptitle("Training history")
    return shown


@overload
def plot_confusion_matrix(
    cm: np.ndarray, normalise: bool, title: str = ..., *, ax: None = None
) -> Figure: ...
@overload
def plot_confusion_matrix(cm: np.ndarray, normalise: bool, title: str = ..., *, ax: Axes) -> Axes: ...
def plot_confusion_matrix(
    cm: np.ndarray, normalise: bool, title: str = "Confusion matrix", *, ax: Axes | None = None
) -> Figure | Axes:
    """True class by row, predicted by column; `normalise` divides each row by its total (recall).

    Drawn on `ax` (and its colour bar beside it) when given, which is then returned."""
    cm = np.asarray(cm, dtype=float)
    totals = cm.sum(axis=1, keepdims=True)
    values = np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0) if normalise else cm
    codes = list(CODES) if len(cm) == len(CODES) else [str(i) for i in range(len(cm))]
    shown, ax = one_panel(ax, (5.8, 5))
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalise else max(values.max(), 1))
    label = "share of the true class" if normalise else "images"
    ax.figure.colorbar(image, ax=ax, shrink=0.8, label=label)
    threshold = (1 if normalise else max(values.max(), 1)) / 2
    for (row, col), value in np.ndenumerate(values):
        text = f"{value:.2f}" if normalise else f"{int(value):,}"
        colour = "white" if value > threshold else "black"
        ax.text(col, row, text, ha="center", va="center", color=colour, fontsize=8)
    ax.set_xticks(range(len(codes)), codes, rotation=45)
    ax.set_yticks(range(len(codes)), codes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{title} ({'row-normalised: recall on the diagonal' if normalise else 'counts'})")
    return shown


@overload
def plot_per_class_recall(
    recalls: dict[str, dict[str, float | None]], title: str = ..., *, ax: None = None
) -> Figure: ...
@overload
def plot_per_class_recall(
    recalls: dict[str, dict[str, float | None]], title: str = ..., *, ax: Axes
) -> Axes: ...
def plot_per_class_recall(
    recalls: dict[str, dict[str, float | None]], title: str = "Recall per class", *, ax: Axes | None = None
) -> Figure | Axes:
    """Bars of each class's recall, one group per class and one bar per series (e.g. val and test).

    The original notebook's "fraction classified incorrectly" turned round: a class whose bar is low is
    one the model misses, whatever the overall accuracy says. A missing value (None) draws no bar.
    Drawn on `ax` when given, which is then returned.
    """
    series = list(recalls)
    width = 0.8 / max(len(series), 1)
    shown, ax = one_panel(ax, (7, 3.8))
    for i, name in enumerate(series):
        values = [_number(recalls[name].get(code)) for code in CODES]
        offset = (i - (len(series) - 1) / 2) * width
        bars = ax.bar(np.arange(len(CODES)) + offset, values, width, label=name)
        ax.bar_label(bars, labels=["" if np.isnan(v) else f"{v:.2f}" for v in values], fontsize=7, padding=1)
    ax.set_xticks(range(len(CODES)), CODES)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("true class")
    ax.set_ylabel("recall (share of the class found)")
    ax.grid(axis="y", alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize="small")
    ax.set_title(title)
    return shown


def _number(value: object) -> float:
    """A score as a float; a missing one (None) as NaN, which draws no bar."""
    return np.nan if value is None else float(value)


@overload
def plot_run_comparison(frame: pd.DataFrame, *, axes: None = None) -> Figure: ...
@overload
def plot_run_comparison(frame: pd.DataFrame, *, axes: Sequence[Axes] | np.ndarray) -> list[Axes]: ...
def plot_run_comparison(
    frame: pd.DataFrame, *, axes: Sequence[Axes] | np.ndarray | None = None
) -> Figure | list[Axes]:
    """Runs side by side: headline test scores (left) and test recall per class (right).

    `frame` has one row per run with the columns skinpamper.evaluation.compare.compare_runs makes. On
    `axes` when given: two, scores then recalls, returned as a list; the runs' legend is then the
    scores panel's instead of the figure's.
    """
    headline = {"balanced accuracy": "balanced_accuracy", "accuracy": "accuracy", "macro AUC": "macro_auc"}
    runs = len(frame)
    width = 0.8 / runs
    fig = None
    if axes is None:
        fig = Figure(figsize=(13, 1.8 + 0.25 * runs + 3.2), layout="constrained")
        scores, recalls = fig.subplots(1, 2, width_ratios=(1, 2.2))
    else:
        scores, recalls = given_axes(axes, 2, "plot_run_comparison", "scores, recall per class")
    for i, row in enumerate(frame.itertuples(index=False)):
        label = f"{row.run} ({row.model}, {row.image_size} px, {row.train_minutes:.1f} min)"
        offset = (i - (runs - 1) / 2) * width
        values = [_number(getattr(row, column)) for column in headline.values()]
        bars = scores.bar(np.arange(len(headline)) + offset, values, width, label=label)
        scores.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=7, padding=1)
        recall = [_number(getattr(row, f"recall_{code}")) for code in CODES]
        recalls.bar(np.arange(len(CODES)) + offset, recall, width, label=label)
    scores.set_xticks(range(len(headline)), list(headline))
    scores.set_title("Test scores")
    recalls.set_xticks(range(len(CODES)), CODES)
    recalls.set_title("Test recall per class")
    for ax in (scores, recalls):
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    if fig is None:
        scores.legend(fontsize="small")
        return [scores, recalls]
    fig.legend(
        *scores.get_legend_handles_labels(), loc="outside lower center", ncols=min(runs, 2), frameon=False
    )
    fig.suptitle(f"{runs} runs compared on their test splits")
    return fig
