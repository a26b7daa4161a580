"""write_run_report() turns a run folder's files into report.html and summary.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from skinpamper import NOT_A_DIAGNOSIS
from skinpamper.classes import CODES
from skinpamper.errors import SkinPamperError
from skinpamper.reports.run_report import write_run_report

HEADINGS = (  # results first; how the run was made last
    "Metrics",
    "Confusion matrices",
    "When the model abstains",
    "Training curves",
    "Data and configuration",
)


def _part(n: int, accuracy: float) -> dict:
    cm = [[0] * 7 for _ in range(7)]
    for i in range(7):
        cm[i][i] = 2
    cm[5][5] = n - 12  # nv is the largest class
    return {
        "n": n,
        "accuracy": accuracy,
        "balanced_accuracy": 0.5,
        "per_class_recall": {code: 0.1 * (i + 1) for i, code in enumerate(CODES)},
        "confusion_matrix": cm,
    }


def make_run(parent: Path) -> Path:
    run = parent / "run-1"
    run.mkdir()
    files = {
        "config.json": {
            "model": "seed_cnn",
            "image_size": 28,
            "fit": "squash",
            "epochs": 3,
            "optimizer": {"name": "adam", "learning_rate": 0.001},
        },
        "metrics.json": {"test": _part(40, 0.75), "val": _part(20, 0.7)},
        "dataset.json": {
            "source": "/data/hmnist_28_28_RGB.csv",
            "images": 100,
            "image_size": 28,
            "class_counts": {code: 10 for code in CODES[:-1]} | {"vasc": 40},
            "split_sizes": {"train": 40, "val": 20, "test": 40},
            "split_class_counts": {
                "train": {code: 4 for code in CODES[:-1]} | {"vasc": 16},
                "val": {code: 2 for code in CODES[:-1]} | {"vasc": 8},
                "test": {code: 4 for code in CODES[:-1]} | {"vasc": 16},
            },
            "grouped": True,
            "note": "grouped by lesion_id",
        },
    }
    for name, content in files.items():
        (run / name).write_text(json.dumps(content))
    history = pd.DataFrame(
        {
            "epoch": [1, 2],
            "loss": [1.2, 0.9],
            "accuracy": [0.5, 0.6],
            "val_loss": [1.3, 1.0],
            "val_accuracy": [0.4, 0.5],
            "val_balanced_accuracy": [0.2, 0.3],
            **{f"val_recall_{code}": [0.1, 0.2] for code in CODES},
            "lr": [0.001, 0.0],
            "seconds": [2.0, 2.1],
        }
    )
    history.to_csv(run / "history.csv", index=False)
    return run


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return make_run(tmp_path)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """One complete run folder with its report already written, shared by the read-only tests."""
    run = make_run(tmp_path_factory.mktemp("written"))
    write_run_report(run)
    return run


def test_report_has_every_section_and_the_note(written) -> None:
    html = (written / "report.html").read_text(encoding="utf-8")
    assert re.findall(r"<h2 id=\"[a-z]+\">([^<]+)</h2>", html) == list(HEADINGS)
    assert NOT_A_DIAGNOSIS in html
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 1 + 2 * 2  # history, 2 matrices per part
    assert not re.search(r'src="(?!data:)', html)
    assert "optimizer.learning_rate" in html
    assert "28 x 28 px" in html
    assert "75.0%" in html  # test accuracy
    assert re.search(
        r"<td class=\"l\">recall vasc</td><td class=\"r\">70\.0%</td><td class=\"r\">70\.0%</td>", html
    )
    assert re.search(r"largest class</td><td class=\"r\">40\.0%</td><td class=\"r\">70\.0%</td>", html)
    test_split = (
        r'test</td><td class="r">40</td><td class="r">40\.0%</td>(<td class="r">4</td>){6}<td class="r">16<'
    )
    assert re.search(test_split, html)  # split sizes with images per class
    assert "not grouped by lesion" not in html


def test_summary_markdown_table(written) -> None:
    markdown = (written / "summary.md").read_text(encoding="utf-8")
    assert (
        "| split | images | accuracy | balanced accuracy | akiec | bcc | bkl | df | mel | nv | vasc |"
        in markdown
    )
    assert "| val | 20 | 70.0% | 50.0% | 10.0% | 20.0% | 30.0% | 40.0% | 50.0% | 60.0% | 70.0% |" in markdown
    assert "| test | 40 | 75.0% |" in markdown
    assert "Model: seed_cnn." in markdown
    assert "(train 40 / val 20 / test 40), split by lesion." in markdown
    assert NOT_A_DIAGNOSIS in markdown


def test_missing_files_drop_their_sections(run_dir) -> None:
    for name in ("history.csv", "config.json", "dataset.json"):
        (run_dir / name).unlink()
    report = write_run_report(run_dir)
    assert report == run_dir / "report.html"
    html = report.read_text(encoding="utf-8")
    assert [h for h in HEADINGS if f">{h}</h2>" in html] == [
        "Metrics",
        "Confusion matrices",
        "When the model abstains",
    ]
    assert NOT_A_DIAGNOSIS in html


def test_ungrouped_split_is_flagged(run_dir) -> None:
    (run_dir / "metrics.json").unlink()  # not needed here; skips the slow confusion matrices
    data = json.loads((run_dir / "dataset.json").read_text())
    (run_dir / "dataset.json").write_text(json.dumps(data | {"grouped": False}))
    html = write_run_report(run_dir).read_text(encoding="utf-8")
    assert "not grouped by lesion" in html
    assert "split not grouped by lesion." in (run_dir / "summary.md").read_text()


def test_not_a_run_folder(tmp_path) -> None:
    with pytest.raises(SkinPamperError, match="not a run folder"):
        write_run_report(tmp_path)


def test_bad_metrics_write_nothing(run_dir) -> None:
    (run_dir / "report.html").write_text("old")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    del metrics["test"]["confusion_matrix"]
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(SkinPamperError, match=r"metrics\.json: 'test' lacks confusion_matrix"):
        write_run_report(run_dir)
    (run_dir / "metrics.json").write_text("{not json")
    with pytest.raises(SkinPamperError, match="not valid JSON"):
        write_run_report(run_dir)
    assert (run_dir / "report.html").read_text() == "old"
    assert not (run_dir / "summary.md").exists()
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["run-1"]


def test_metadata_scores_sit_beside_the_image_only_ones(run_dir) -> None:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["with_metadata"] = {"val": _part(20, 0.8), "test": _part(40, 0.85)}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    write_run_report(run_dir)
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "test + age, sex, site" in html and "85.0%" in html
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 1 + 2 * 2  # matrices of val and test only
    assert "| test + age, sex, site | 40 | 85.0% |" in (run_dir / "summary.md").read_text(encoding="utf-8")


def test_a_trained_runs_report_shows_abstention_and_subgroups(trained_run: Path) -> None:
    html = (trained_run / "report.html").read_text(encoding="utf-8")
    headings = re.findall(r"<h2 id=\"[a-z]+\">([^<]+)</h2>", html)
    assert headings[:4] == ["Metrics", "Confusion matrices", "When the model abstains", "By subgroup"]
    assert "answered ok" in html and "Risk-coverage" in html
    assert (
        "the test split&#39;s plain probabilities" in html or "the test split's plain probabilities" in html
    )
