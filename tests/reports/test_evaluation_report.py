"""write_evaluation_report(): one self-contained page with every section, and a Markdown summary."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from skinpamper import NOT_A_DIAGNOSIS
from skinpamper.cli import main
from skinpamper.data.load import load_dataset
from skinpamper.evaluation.evaluate import Evaluation, evaluate
from skinpamper.evaluation.outputs import OUTPUTS
from skinpamper.reports.evaluation_report import write_evaluation_report
from skinpamper.scoring.clinical import clinical_metrics

SECTIONS = (  # results first; how the run was made last
    "Metrics",
    "Confusion matrices",
    "When the model abstains",
    "By subgroup",
    "ROC and precision-recall",
    "Calibration",
    "Grad-CAM",
    "Most confident mistakes",
    "Training curves",
    "Data and configuration",
)


def _headings(html: str) -> list[str]:
    return re.findall(r"<h2 id=\"[a-z]+\">([^<]+)</h2>", html)


@pytest.fixture(scope="module")
def report(
    trained_run: Path, trained_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str, Evaluation]:
    """The page and summary of the trained run on its own test split, with TTA."""
    dataset = load_dataset(trained_data, size=28)
    evaluation = evaluate(trained_run, dataset, tta=True, n_boot=20)
    html_path, summary_path = write_evaluation_report(evaluation, tmp_path_factory.mktemp("report"))
    return html_path.read_text(encoding="utf-8"), summary_path.read_text(encoding="utf-8"), evaluation


def test_page_has_every_section_inlined_images_and_the_note(report) -> None:
    html, _, evaluation = report
    assert _headings(html) == list(SECTIONS)
    assert NOT_A_DIAGNOSIS in html
    # history, reliability, 2 confusion matrices, risk-coverage, ROC, PR, Grad-CAM grid, mistakes: all
    # inlined (no forest plot: every subgroup of this tiny test split is too small)
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 9
    assert "answered ok" in html and "AURC" in html and "too few" in html
    assert html.index('id="setup"') > html.index('id="curves"')  # data and configuration last, collapsed
    assert not re.search(r'src="(?!data:)', html)
    assert '<th class="r">plain</th><th class="r">8-view TTA</th>' in html  # side by side
    balanced = evaluation.metrics["balanced_accuracy"]
    low, high = evaluation.metrics["ci95"]["balanced_accuracy"]
    assert f"{100 * balanced:.1f}% ({100 * low:.1f}-{100 * high:.1f}%)" in html  # figure with its interval
    assert "Temperature scaling" in html and "Per class, 8-view TTA" in html
    assert "28 x 28 px" in html  # the run's dataset table
    assert 'model</td><td class="l">compact_cnn' in html  # the run's configuration
    assert f"{len(evaluation.y_true)} images, the test split of " in html
    assert "model compact_cnn at 28 px" in html


def test_summary_has_both_scorings_and_the_note(report) -> None:
    _, summary, evaluation = report
    n = evaluation.metrics["n"]
    assert summary.startswith(f"## Evaluation of `run` on test ({n:,} images)")
    assert re.search(r"^\| plain \| \d+\.\d% \| \d+\.\d% \(", summary, re.M)
    assert re.search(r"^\| 8-view TTA \| ", summary, re.M)
    assert "| recall | akiec | bcc | bkl | df | mel | nv | vasc |" in summary
    assert "Model: compact_cnn at 28 px." in summary and "(fitted on validation)" in summary
    assert NOT_A_DIAGNOSIS in summary


def test_without_run_files_images_or_tta_only_their_sections_go(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y_true = np.arange(70) % 7
    probs = rng.dirichlet(np.ones(7), size=70)
    evaluation = Evaluation(
        run=str(tmp_path / "gone"),
        data="external.csv",
        part="all",
        image_ids=[f"x{i}" for i in range(70)],
        y_true=y_true,
        probs=probs,
        metrics=clinical_metrics(y_true, probs, n_boot=0),
    )
    html_path, summary_path = write_evaluation_report(evaluation, tmp_path / "out")
    html = html_path.read_text(encoding="utf-8")
    assert _headings(html) == [
        "Metrics",
        "Confusion matrices",
        "When the model abstains",
        "ROC and precision-recall",
        "Calibration",
        "Data and configuration",
    ]
    assert "saved without an out-of-distribution detector" in html
    assert "stores no temperature" in html and "was not run" in html
    assert "8-view TTA" not in summary_path.read_text(encoding="utf-8")


def test_evaluate_command_writes_and_names_the_report(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        main, ["evaluate", str(trained_run), "--no-tta", "--bootstrap", "0", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == sorted(OUTPUTS)  # the documented list
    for name in OUTPUTS:
        assert f"wrote {out / name}" in result.output
