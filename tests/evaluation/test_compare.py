"""compare: runs side by side from their own files, printed, and written as CSV, Markdown and PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure

from skinpamper.classes import CODES
from skinpamper.cli import main
from skinpamper.errors import ConfigError
from skinpamper.evaluation.compare import compare_runs, comparison_table
from skinpamper.reports.markdown import markdown_table
from skinpamper.reports.plots import plot_run_comparison
from skinpamper.runfolder.files import HISTORY_COLUMNS
from skinpamper.training.config import TrainConfig
from skinpamper.training.run import Run


def make_run(folder: Path, model: str, balanced: float, seconds: tuple[float, ...]) -> Path:
    """A finished run folder with only what compare reads: config, history, metrics."""
    run = Run.create(folder)
    run.write_config(TrainConfig(model=model, image_size=32))
    run.write_history(
        [dict.fromkeys(HISTORY_COLUMNS, 0.0) | {"epoch": i + 1, "seconds": s} for i, s in enumerate(seconds)]
    )
    recall = {code: 0.1 * i for i, code in enumerate(CODES)}
    test = {
        "n": 200,
        "accuracy": 0.8,
        "balanced_accuracy": balanced,
        "macro_auc": 0.9,
        "per_class_recall": recall,
    }
    run.write_metrics({"val": test, "test": test})
    return folder


def test_frame_holds_each_runs_own_figures_in_the_given_order(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", "seed", 0.61, (60.0, 90.0))
    b = make_run(tmp_path / "b", "resnet_small", 0.55, (30.0,))

    frame = compare_runs([b, a])
    assert frame.columns[0] == "run" and frame["run"].tolist() == ["b", "a"]  # the CSV's first column
    assert frame["model"].tolist() == ["resnet_small", "seed"]
    assert frame["epochs"].tolist() == [1, 2]
    assert frame["train_minutes"].tolist() == pytest.approx([0.5, 2.5])
    assert frame["balanced_accuracy"].tolist() == [0.55, 0.61]
    assert frame["recall_mel"].tolist() == pytest.approx([0.4, 0.4])

    table = comparison_table(frame)
    assert table.columns == ("metric", "b", "a")
    rows = {row[0]: row[1:] for row in table.rows}
    assert rows["balanced accuracy"] == ("55.0%", "61.0%")
    assert rows["training minutes"] == ("0.5", "2.5")
    assert rows["macro AUC"] == ("0.900", "0.900")
    assert rows["recall vasc"] == ("60.0%", "60.0%")
    assert "| metric | b | a |\n|:--|--:|--:|\n| model | resnet_small | seed |" in markdown_table(table)


def test_runs_with_the_same_folder_name_are_told_apart_by_path(tmp_path: Path) -> None:
    first = make_run(tmp_path / "x" / "run", "seed", 0.5, (1.0,))
    second = make_run(tmp_path / "y" / "run", "seed", 0.6, (1.0,))
    assert compare_runs([first, second])["run"].tolist() == [str(first), str(second)]


def test_unfinished_run_is_refused_naming_the_file(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", "seed", 0.5, (1.0,))
    (run / "metrics.json").unlink()
    with pytest.raises(ConfigError, match=r"r/metrics\.json: missing; the run has not finished training"):
        compare_runs([run])
    result = CliRunner().invoke(main, ["compare", str(run)])
    assert result.exit_code == 1 and "metrics.json: missing" in result.output


def test_command_prints_the_table_and_writes_csv_markdown_and_plot(trained_run: Path, tmp_path: Path) -> None:
    other = make_run(tmp_path / "other", "resnet_small", 0.42, (12.0,))
    out = tmp_path / "cmp"
    result = CliRunner().invoke(main, ["compare", str(trained_run), str(other), "--out", str(out)])
    assert result.exit_code == 0, result.output

    test = json.loads((trained_run / "metrics.json").read_text())["test"]
    assert "Runs compared" in result.output
    assert f"{100 * test['balanced_accuracy']:.1f}%" in result.output and "42.0%" in result.output
    for name in ("comparison.csv", "comparison.md", "comparison.png"):
        assert f"wrote {out / name}" in result.output
    csv = pd.read_csv(out / "comparison.csv")
    assert csv["run"].tolist() == ["run", "other"]
    assert csv["model"].tolist() == ["compact_cnn", "resnet_small"]
    assert csv.loc[0, "test_images"] == test["n"]
    fused = json.loads((trained_run / "metrics.json").read_text())["with_metadata"]["test"]
    assert csv["balanced_accuracy_with_metadata"].tolist()[0] == pytest.approx(fused["balanced_accuracy"])
    assert pd.isna(csv["balanced_accuracy_with_metadata"].tolist()[1])  # a run without a metadata model
    assert f"{100 * fused['balanced_accuracy']:.1f}% | n/a |" in (out / "comparison.md").read_text()
    assert (out / "comparison.png").read_bytes().startswith(b"\x89PNG")
    assert "| balanced accuracy |" in (out / "comparison.md").read_text()


def test_plot_draws_each_runs_scores_and_recalls(tmp_path: Path) -> None:
    frame = compare_runs(
        [make_run(tmp_path / "a", "seed", 0.61, (6.0,)), make_run(tmp_path / "b", "seed", 0.3, (6.0,))]
    )
    scores, recalls = plot_run_comparison(frame).axes
    heights = [round(patch.get_height(), 3) for patch in scores.patches]
    assert heights == [0.61, 0.8, 0.9, 0.3, 0.8, 0.9]  # per run: balanced accuracy, accuracy, macro AUC
    assert len(recalls.patches) == 2 * len(CODES)
    assert [t.get_text() for t in scores.figure.legends[0].get_texts()] == [
        "a (seed, 32 px, 0.1 min)",
        "b (seed, 32 px, 0.1 min)",
    ]


def test_plot_draws_on_the_two_axes_given_with_the_legend_on_the_scores(tmp_path: Path) -> None:
    frame = compare_runs([make_run(tmp_path / "a", "seed", 0.61, (6.0,))])
    fig = Figure()
    scores, recalls = fig.subplots(1, 2)
    assert plot_run_comparison(frame, axes=[scores, recalls]) == [scores, recalls]
    assert [round(patch.get_height(), 3) for patch in scores.patches] == [0.61, 0.8, 0.9]
    assert len(recalls.patches) == len(CODES)
    assert [t.get_text() for t in scores.get_legend().get_texts()] == ["a (seed, 32 px, 0.1 min)"]
    assert not fig.legends and fig.get_suptitle() == ""
    with pytest.raises(ValueError, match=r"plot_run_comparison draws 2 panels .*: give 2 Axes, not 1"):
        plot_run_comparison(frame, axes=[Figure().subplots()])
