"""`write_explore`: a first look at a dataset, as PNG figures plus one offline HTML page (index.html)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from matplotlib.figure import Figure

from skinpamper.data.dataset import Dataset
from skinpamper.data.summary import summarize, summary_tables
from skinpamper.reports.html import figure_png, png_data_uri, render_template, write_files
from skinpamper.reports.plots import (
    plot_age_by_class,
    plot_class_counts,
    plot_dx_type_by_class,
    plot_localization_counts,
    plot_pixel_rows,
    plot_sex_counts,
)

# (file name, title, why it matters, plot), in page order.
FIGURES: tuple[tuple[str, str, str, Callable[[Dataset], Figure]], ...] = (
    (
        "class_counts.png",
        "Images per class",
        "The classes are far from balanced: a model that always answers the largest class scores its "
        "share as accuracy, so judge models by balanced accuracy and per-class recall.",
        plot_class_counts,
    ),
    (
        "pixel_rows.png",
        "Sample images",
        "Random images of each class at the size the model sees them, pixel for pixel.",
        plot_pixel_rows,
    ),
    (
        "age_by_class.png",
        "Age by class",
        "Each class has its own y scale so the small classes stay visible.",
        plot_age_by_class,
    ),
    ("sex_counts.png", "Sex", "Recorded sex of the patient, missing values in grey.", plot_sex_counts),
    (
        "localization_counts.png",
        "Body site",
        "Where on the body each lesion is, missing values in grey.",
        plot_localization_counts,
    ),
    (
        "dx_type_by_class.png",
        "How diagnoses were confirmed",
        "Histopathology is the most reliable ground truth; follow-up and consensus labels are softer.",
        plot_dx_type_by_class,
    ),
)


def write_explore(dataset: Dataset, out_dir: Path) -> Path:
    """Write the figures as PNGs and `index.html` (figures inlined) into `out_dir`; returns the page.

    Nothing is published unless every figure and the page rendered (see `write_files`).
    """
    out_dir = Path(out_dir)
    pngs = {name: figure_png(plot(dataset)) for name, _, _, plot in FIGURES}
    figures = [
        {"title": title, "caption": caption, "uri": png_data_uri(pngs[name])}
        for name, title, caption, _ in FIGURES
    ]
    page = render_template(
        "explore.html",
        title=f"Dataset: {Path(dataset.source).name}",
        tables=summary_tables(summarize(dataset)),
        figures=figures,
    )
    write_files(out_dir, {**pngs, "index.html": page.encode("utf-8")})
    return out_dir / "index.html"
