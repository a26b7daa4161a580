"""The list of evaluate's files reads as one phrase in messages and as a list on the documentation site."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from click.testing import CliRunner

from skinpamper.cli import main
from skinpamper.evaluation.outputs import OUTPUTS, outputs_markdown, outputs_text

ROOT = Path(__file__).resolve().parents[2]


def test_outputs_read_as_a_phrase_and_a_list() -> None:
    assert outputs_text() == (
        "metrics.json, predictions.csv, status_table.csv, report.html, summary.md and model_card.md"
    )
    lines = outputs_markdown().splitlines()
    assert [line.split("`")[1] for line in lines] == list(OUTPUTS)
    assert all(line.endswith(".") and ": " in line for line in lines)


def test_the_help_and_the_evaluation_page_name_every_file() -> None:
    help_text = " ".join(CliRunner().invoke(main, ["evaluate", "--help"]).output.split())
    assert f"Folder for {outputs_text()}" in help_text
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "scripts" / "docs_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    page = hooks.on_page_markdown((ROOT / "docs" / "evaluation.md").read_text(encoding="utf-8"))
    assert outputs_markdown() in page and "<!-- evaluate-outputs -->" not in page
