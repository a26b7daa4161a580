"""evaluate: the run's own test split and an external labelled folder, with and without TTA."""

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from skinpamper.cli import main
from skinpamper.data.load import load_dataset
from skinpamper.errors import ConfigError
from skinpamper.evaluate import evaluate


@pytest.fixture
def trained_run(ham_folder: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    args = ["train", "--data", ham_folder, "--image-size", "28", "--epochs", "1", "--batch-size", "8"]
    result = CliRunner().invoke(main, [*map(str, args), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def test_own_test_split_and_external_folder(trained_run: Path, labelled_folder: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    own = runner.invoke(
        main, ["evaluate", str(trained_run), "--bootstrap", "20", "--out", str(tmp_path / "e1")]
    )
    assert own.exit_code == 0, own.output
    assert "8-view TTA" in own.output and "not a diagnosis" in own.output
    metrics = json.loads((tmp_path / "e1" / "metrics.json").read_text())
    split = json.loads((trained_run / "split.json").read_text())
    assert metrics["part"] == "test" and metrics["plain"]["n"] == len(split["test"])
    assert metrics["tta"]["n"] == metrics["plain"]["n"]
    predictions = pd.read_csv(tmp_path / "e1" / "predictions.csv")
    assert predictions["image_id"].tolist() == split["test"]
    assert predictions.filter(like="p_").sum(axis=1).round(4).eq(1).all()

    args = [
        "evaluate",
        str(trained_run),
        "--data",
        str(labelled_folder),
        "--no-tta",
        "--out",
        str(tmp_path / "e2"),
    ]
    external = runner.invoke(main, args)
    assert external.exit_code == 0, external.output
    metrics = json.loads((tmp_path / "e2" / "metrics.json").read_text())
    assert metrics["part"] == "all" and metrics["plain"]["n"] == 7 and metrics["tta"] is None


def test_wrong_image_size_is_refused(trained_run: Path, ham_folder: Path) -> None:
    with pytest.raises(ConfigError, match="trained at 28 px"):
        evaluate(trained_run, load_dataset(ham_folder, size=16), external=True)


def test_run_stores_validation_temperature_and_evaluation_reports_its_effect(
    trained_run: Path, tmp_path: Path
) -> None:
    calibration = json.loads((trained_run / "calibration.json").read_text())
    split = json.loads((trained_run / "split.json").read_text())
    assert calibration["fitted_on"] == "val" and calibration["n"] == len(split["val"])
    assert calibration["temperature"] > 0
    # The fitted T minimises validation NLL, so it cannot make the validation Brier score much worse.
    assert calibration["brier_after"] <= calibration["brier_before"] + 0.05
    args = ["evaluate", str(trained_run), "--no-tta", "--out", str(tmp_path / "e")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    effect = json.loads((tmp_path / "e" / "metrics.json").read_text())["calibration"]
    assert effect["temperature"] == calibration["temperature"]
    assert {"ece_before", "ece_after", "brier_before", "brier_after"} <= effect.keys()
