"""`write_comparison`: the runs of `compare_runs` as a CSV, a Markdown table and a bar chart."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from skinpamper.evaluation.compare import comparison_table
from skinpamper.reports.html import figure_png, write_files
from skinpamper.reports.markdown import markdown_table
from skinpamper.reports.plots import plot_run_comparison

OUTPUTS = ("comparison.csv", "comparison.md", "comparison.png")


def write_comparison(frame: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """comparison.csv (one row per run), comparison.md and comparison.png, written all or nothing."""
    out = Path(out_dir)
    csv = io.StringIO()
    frame.to_csv(csv, index=False, float_format="%.6g")
    contents = {
        "comparison.csv": csv.getvalue().encode("utf-8"),
        "comparison.md": markdown_table(comparison_table(frame)).encode("utf-8"),
        "comparison.png": figure_png(plot_run_comparison(frame)),
    }
    write_files(out, contents)
    return [out / name for name in OUTPUTS]
