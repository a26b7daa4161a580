"""What a dataset holds, in the numbers to check before training; `skinpamper data info` prints them.

HAM10000 is heavily imbalanced (two thirds nv) and has several images of many lesions; both shape
later choices (balanced metrics, lesion-grouped splits), so the summary puts them first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from skinpamper.classes import CLASSES, CODES
from skinpamper.data.dataset import META_COLUMNS, Dataset

# How HAM10000 confirmed each diagnosis (the dx_type column).
DX_TYPES: dict[str, str] = {
    "histo": "histopathology",
    "follow_up": "follow-up: unchanged over time",
    "consensus": "expert consensus",
    "confocal": "in-vivo confocal microscopy",
}


@dataclass(frozen=True)
class DatasetSummary:
    """Counts and distributions of one Dataset; value counts leave missing values out (see `missing`)."""

    source: str
    images: int
    image_size: tuple[int, int]
    lesions: int | None
    images_per_lesion: pd.Series | None  # index: images of one lesion (1, 2, ...); values: lesions
    classes: pd.DataFrame  # index: class code; columns: images, share (percent)
    age: pd.Series  # min, median, mean, max over images with a known age
    age_by_class: pd.Series  # median age per class code
    sex: pd.Series
    localization: pd.Series
    dx_type: pd.Series
    missing: pd.Series  # missing values per metadata column


@dataclass(frozen=True)
class Table:
    """A titled table of already formatted cells; printed as text here, rendered as HTML by the pages.

    `align` has one letter per column: "l" left, "r" right (numbers). No columns means no header row.
    """

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    align: str
    note: str = ""


def summarize(dataset: Dataset) -> DatasetSummary:
    """Count images, lesions, classes and metadata values of `dataset`."""
    meta = dataset.meta
    counts = dataset.class_counts()
    ages = pd.to_numeric(meta["age"], errors="coerce").astype(float)
    lesions = per_lesion = None
    if dataset.has_lesion_ids:
        images_of_lesion = meta["lesion_id"].value_counts()
        lesions = len(images_of_lesion)
        per_lesion = images_of_lesion.value_counts().sort_index().rename("lesions")
        per_lesion.index.name = "images per lesion"
    return DatasetSummary(
        source=dataset.source,
        images=len(dataset),
        image_size=dataset.image_size,
        lesions=lesions,
        images_per_lesion=per_lesion,
        classes=pd.DataFrame({"images": counts, "share": 100 * counts / counts.sum()}),
        age=pd.Series({"min": ages.min(), "median": ages.median(), "mean": ages.mean(), "max": ages.max()}),
        age_by_class=pd.Series({code: ages[dataset.labels == i].median() for i, code in enumerate(CODES)}),
        sex=meta["sex"].value_counts(),
        localization=meta["localization"].value_counts(),
        dx_type=meta["dx_type"].value_counts(),
        missing=meta[list(META_COLUMNS)].isna().sum(),
    )


def _count(n: float) -> str:
    return f"{int(n):,}"


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def _years(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f}".removesuffix(".0")


def _counts_table(
    title: str, counts: pd.Series, missing: int, total: int, meanings: dict[str, str] | None = None
) -> Table:
    """Value counts with their share of all images, plus a row for images where the value is missing."""
    rows = [(str(value), _count(n), _percent(n, total)) for value, n in counts.items()]
    if missing:
        rows.append(("(missing)", _count(missing), _percent(missing, total)))
    columns = (str(counts.index.name), "images", "share")
    if meanings is None:
        return Table(title, columns, tuple(rows), "lrr")
    rows = [(value, meanings.get(value, ""), *rest) for value, *rest in rows]
    return Table(title, (columns[0], "meaning", *columns[1:]), tuple(rows), "llrr")


def summary_tables(summary: DatasetSummary) -> list[Table]:
    """The summary as formatted tables, shared by the terminal output and the HTML explore page."""
    height, width = summary.image_size
    overview = [("source", summary.source), ("images", _count(summary.images))]
    overview.append(("image size", f"{height} x {width} px, RGB"))
    if summary.lesions is None:
        overview.append(("lesions", "unknown (no lesion ids: a split cannot keep each lesion in one part)"))
    else:
        ratio = summary.images / summary.lesions
        overview.append(("lesions", f"{summary.lesions:,} ({ratio:.2f} images per lesion on average)"))
    tables = [Table("Overview", (), tuple(overview), "ll")]

    names = {d.code: d.name for d in CLASSES}
    class_rows = [
        (code, names[code], _count(row.images), f"{row.share:.1f}%", _years(summary.age_by_class[code]))
        for code, row in summary.classes.iterrows()
    ]
    class_rows.append(("total", "", _count(summary.images), "100.0%", _years(summary.age["median"])))
    tables.append(
        Table(
            "Classes",
            ("code", "diagnosis", "images", "share", "median age"),
            tuple(class_rows),
            "llrrr",
            "Accuracy rewards predicting the largest class; compare models by balanced accuracy.",
        )
    )
    if summary.images_per_lesion is not None:
        rows = tuple((str(k), _count(n), _count(k * n)) for k, n in summary.images_per_lesion.items())
        tables.append(
            Table(
                "Images per lesion",
                ("images of the lesion", "lesions", "images"),
                rows,
                "rrr",
                "Images of one lesion must stay in one split, or test scores are inflated.",
            )
        )
    age = summary.age
    missing_age = int(summary.missing["age"])
    tables.append(
        Table(
            "Age (years)",
            ("min", "median", "mean", "max", "missing"),
            ((*(_years(age[k]) for k in ("min", "median", "mean", "max")), _count(missing_age)),),
            "rrrrr",
        )
    )
    missing = summary.missing
    tables += [
        _counts_table("Sex", summary.sex, int(missing["sex"]), summary.images),
        _counts_table("Localization", summary.localization, int(missing["localization"]), summary.images),
        _counts_table("Diagnosis method", summary.dx_type, int(missing["dx_type"]), summary.images, DX_TYPES),
    ]
    missing_rows = tuple((column, _count(n), _percent(n, summary.images)) for column, n in missing.items())
    tables.append(Table("Missing values", ("column", "missing", "share"), missing_rows, "lrr"))
    return tables


def format_table(table: Table) -> str:
    """`table` as aligned plain text under its title, for a terminal."""
    rows = [table.columns, *table.rows] if table.columns else list(table.rows)
    widths = [max(len(row[i]) for row in rows) for i in range(len(table.align))]

    def line(cells: tuple[str, ...]) -> str:
        padded = (
            c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(cells, widths, table.align, strict=True)
        )
        return "  " + "  ".join(padded).rstrip()

    lines = [table.title]
    if table.columns:
        lines += [line(table.columns), line(tuple("-" * w for w in widths))]
    lines += [line(row) for row in table.rows]
    if table.note:
        lines.append(f"  {table.note}")
    return "\n".join(lines)


def format_summary(summary: DatasetSummary) -> str:
    """The whole summary as plain-text tables separated by blank lines."""
    return "\n\n".join(format_table(t) for t in summary_tables(summary)) + "\n"
