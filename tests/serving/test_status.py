"""Every prediction's status: ok, uncertain, out_of_distribution, or unchecked for models without a
detector; the same from a run folder and from its ONNX export, through the Predictor and the CLI."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from service_helpers import with_thresholds
from skinpamper.cli import main
from skinpamper.scoring.abstention import Abstention
from skinpamper.serving.predict import Predictor
from skinpamper.training.run import Run

OLD_RUN = Path(__file__).parents[1] / "fixtures" / "run_v0_1"


def _images(count: int = 6) -> np.ndarray:
    return np.random.default_rng(4).integers(0, 256, (count, 28, 28, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def onnx_predictor(onnx_model: Path) -> Predictor:
    return Predictor.load(onnx_model)


def test_thresholds_are_stored_in_the_run_and_travel_in_the_export(
    trained_run: Path, onnx_predictor: Predictor
) -> None:
    _, rules = Run.open(trained_run).abstention()
    assert Abstention.from_dict(onnx_predictor.card.abstention, "onnx") == rules
    assert Predictor.load(trained_run).abstention == rules == onnx_predictor.abstention


def test_run_folder_and_onnx_give_the_same_scores_and_statuses(
    trained_run: Path, onnx_predictor: Predictor
) -> None:
    names = [f"image {i}" for i in range(6)]
    keras_side = Predictor.load(trained_run).predict_arrays(_images(), names)
    onnx_side = onnx_predictor.predict_arrays(_images(), names)
    for k, o in zip(keras_side, onnx_side, strict=True):
        assert k.status == o.status != "unchecked"
        assert k.ood_score == pytest.approx(o.ood_score, rel=1e-3)
        np.testing.assert_allclose(k.probabilities, o.probabilities, atol=1e-4)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"ood": 1e12, "confidence": 0.0}, "ok"),
        ({"ood": 1e12, "confidence": 1.01}, "uncertain"),
        ({"ood": -1.0, "confidence": 0.0}, "out_of_distribution"),
    ],
)
def test_each_status_path(onnx_predictor: Predictor, changes: dict[str, float], expected: str) -> None:
    predictions = with_thresholds(onnx_predictor, **changes).predict_arrays(_images(2), ["a", "b"])
    assert {p.status for p in predictions} == {expected}
    first = predictions[0].to_dict()
    assert first["ood_score"] > 0 and first["confidence"] == pytest.approx(
        max(first["probabilities"].values())
    )
    assert sum(first["probabilities"].values()) == pytest.approx(1.0)  # kept even when refused


def test_uncertainty_reads_the_image_before_the_patients_metadata(onnx_predictor: Predictor) -> None:
    """The metadata can sharpen the shown probabilities, but the status is about the image."""
    from skinpamper.scoring.metadata_model import PatientInfo

    unsure = with_thresholds(onnx_predictor, ood=1e12, confidence=1.01)
    (plain,) = unsure.predict_arrays(_images(1), ["a"])
    (fused,) = unsure.predict_arrays(_images(1), ["a"], [PatientInfo(age=70.0, sex="male", site="face")])
    assert fused.with_metadata and fused.status == plain.status == "uncertain"
    assert fused.confidence == plain.confidence


def test_a_model_saved_before_detectors_says_unchecked(tmp_path: Path) -> None:
    run = shutil.copytree(OLD_RUN, tmp_path / "old")
    for target in (run, run / "model.onnx"):
        predictor = Predictor.load(target)
        assert not predictor.checks_status
        (prediction,) = predictor.predict_arrays(_images(1), ["a"])
        assert prediction.status == "unchecked" and prediction.ood_score is None
    Image.fromarray(_images(1)[0]).save(tmp_path / "a.png")
    result = CliRunner().invoke(main, ["predict", str(run / "model.onnx"), str(tmp_path / "a.png")])
    assert result.exit_code == 0, result.output
    assert "status unchecked: this model was saved without an out-of-distribution detector" in result.output


def test_cli_shows_the_status_in_every_format(onnx_model: Path, trained_run: Path, tmp_path: Path) -> None:
    Image.fromarray(_images(1)[0]).save(tmp_path / "a.png")
    # a copy of the run whose thresholds call everything out of distribution
    run = shutil.copytree(trained_run, tmp_path / "run", ignore=shutil.ignore_patterns("*.onnx"))
    record = json.loads((run / "abstention.json").read_text())
    refusing = {"ood_threshold": -1.0, "far_ood_threshold": -1.0, "dermoscopy_threshold": -1e9}
    (run / "abstention.json").write_text(json.dumps({**record, **refusing}))
    image = str(tmp_path / "a.png")
    table = CliRunner().invoke(main, ["predict", str(run), image, "--no-tta"])
    assert table.exit_code == 0, table.output
    assert "out of distribution: this does not look like a dermoscopy image" in table.output
    assert "status: out_of_distribution when not dermoscopy (log-odds above -1000000000.00" in table.output
    document = json.loads(CliRunner().invoke(main, ["predict", str(run), image, "--format", "json"]).output)
    (item,) = document["predictions"]
    assert item["status"] == "out_of_distribution" and item["ood_threshold"] == -1.0
    assert len(item["probabilities"]) == 7
    rows = list(
        csv.DictReader(
            io.StringIO(CliRunner().invoke(main, ["predict", str(run), image, "--format", "csv"]).output)
        )
    )
    assert rows[0]["status"] == "out_of_distribution" and float(rows[0]["ood_score"]) > -1.0


def test_unfamiliar_dermoscopy_is_answered_with_its_warning_in_every_output(
    trained_run: Path, tmp_path: Path
) -> None:
    """Distance above the unfamiliar threshold, dermoscopy detector content: answered, warned."""
    Image.fromarray(_images(1)[0]).save(tmp_path / "a.png")
    run = shutil.copytree(trained_run, tmp_path / "run", ignore=shutil.ignore_patterns("*.onnx"))
    record = json.loads((run / "abstention.json").read_text())
    assert record["dermoscopy_threshold"] is not None  # training fitted the detector
    confident = {k: {**v, "threshold": 0.0} for k, v in record["confidence"].items()}
    unfamiliar = {"ood_threshold": -1.0, "far_ood_threshold": 1e30, "dermoscopy_threshold": 1e9}
    (run / "abstention.json").write_text(json.dumps({**record, **unfamiliar, "confidence": confident}))
    image = str(tmp_path / "a.png")
    table = CliRunner().invoke(main, ["predict", str(run), image, "--no-tta"])
    assert table.exit_code == 0, table.output
    assert "unfamiliar: dermoscopy unlike the training images" in table.output
    assert "mel?" in table.output and "not a diagnosis" in table.output
    document = json.loads(CliRunner().invoke(main, ["predict", str(run), image, "--format", "json"]).output)
    (item,) = document["predictions"]
    assert item["status"] == "unfamiliar" and "another device or clinic" in item["warning"]
    assert item["not_dermoscopy"] < item["not_dermoscopy_threshold"] == 1e9
    assert isinstance(item["melanoma_not_ruled_out"], bool) or record["melanoma"] is None
    output = CliRunner().invoke(main, ["predict", str(run), image, "--format", "csv"]).output
    (row,) = csv.DictReader(io.StringIO(output))
    assert row["status"] == "unfamiliar" and "another device" in row["warning"]
    out = tmp_path / "scores.parquet"
    result = CliRunner().invoke(main, ["predict", str(run), image, "--out", str(out), "--no-tta"])
    assert result.exit_code == 0, result.output
    import pandas as pd

    frame = pd.read_parquet(out)
    assert frame["status"].tolist() == ["unfamiliar"] and "another device" in frame["warning"][0]
