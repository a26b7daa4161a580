"""evaluate: the run's own test split and an external labelled folder, with and without TTA."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from skinpamper.classes import CODES
from skinpamper.cli import main
from skinpamper.data.load import load_dataset
from skinpamper.errors import ConfigError
from skinpamper.evaluation.evaluate import evaluate, gradcam_examples, write_evaluation


def test_own_test_split_and_external_folder(trained_run: Path, labelled_folder: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    own = runner.invoke(
        main, ["evaluate", str(trained_run), "--bootstrap", "20", "--out", str(tmp_path / "e1")]
    )
    assert own.exit_code == 0, own.output
    assert "8-view TTA" in own.output and "not a diagnosis" in own.output
    assert "with age, sex, site: " in own.output  # the fixture's metadata records them
    assert "with age, sex, site" in (tmp_path / "e1" / "report.html").read_text()
    metrics = json.loads((tmp_path / "e1" / "metrics.json").read_text())
    split = json.loads((trained_run / "split.json").read_text())
    assert metrics["part"] == "test" and metrics["plain"]["n"] == len(split["test"])
    assert metrics["tta"]["n"] == metrics["plain"]["n"]
    predictions = pd.read_csv(tmp_path / "e1" / "predictions.csv")
    assert predictions["image_id"].tolist() == split["test"]
    assert predictions.filter(like="p_").sum(axis=1).round(4).eq(1).all()
    # what predict would say of each image, and what refusing costs and buys on this set
    assert set(predictions["status"]) <= {"ok", "unfamiliar", "uncertain", "out_of_distribution"}
    shares = metrics["abstention"]["shares"]
    assert {k: round(v, 6) for k, v in shares.items()} == {
        s: round(float((predictions["status"] == s).mean()), 6) for s in shares
    }
    assert 0 <= metrics["risk_coverage"]["aurc"] <= 1 and metrics["risk_coverage"]["coverage"][-1] == 1.0
    assert metrics["subgroups"]["overall"]["n"] == len(split["test"])
    assert {row["factor"] for row in metrics["subgroups"]["groups"]} >= {"sex", "localization"}

    args = [
        "evaluate",
        str(trained_run),
        "--data",
        str(labelled_folder),
        "--no-tta",
        "--bootstrap",
        "20",
        "--out",
        str(tmp_path / "e2"),
    ]
    external = runner.invoke(main, args)
    assert external.exit_code == 0, external.output
    metrics = json.loads((tmp_path / "e2" / "metrics.json").read_text())
    assert metrics["part"] == "all" and metrics["plain"]["n"] == 7 and metrics["tta"] is None
    # a clinic testing the model on its own images sees how much is answered, and how well
    assert "by status:" in external.output and "melanoma sensitivity" in external.output
    table = pd.read_csv(tmp_path / "e2" / "status_table.csv")
    assert table["status"].tolist() == ["ok", "unfamiliar", "uncertain", "out_of_distribution"]
    assert table["n"].sum() == 7 and table["share"].sum() == pytest.approx(1.0)
    given = pd.read_csv(tmp_path / "e2" / "predictions.csv")["status"].value_counts()
    assert {s: n for s, n in zip(table["status"], table["n"], strict=True) if n} == given.to_dict()
    assert "By status" in (tmp_path / "e2" / "report.html").read_text()
    assert metrics["with_metadata"] is None and "with age, sex, site" not in external.output


def test_wrong_image_size_is_refused(trained_run: Path, ham_folder: Path) -> None:
    with pytest.raises(ConfigError, match="trained at 28 px"):
        evaluate(trained_run, load_dataset(ham_folder, size=16), external=True)


def test_run_stores_validation_temperature_and_evaluation_reports_its_effect(
    trained_run: Path, ham_folder: Path, tmp_path: Path
) -> None:
    calibration = json.loads((trained_run / "calibration.json").read_text())
    split = json.loads((trained_run / "split.json").read_text())
    assert calibration["fitted_on"] == "val" and calibration["n"] == len(split["val"])
    assert calibration["temperature"] > 0
    # The fitted T minimises validation NLL, so it cannot make the validation Brier score much worse.
    assert calibration["brier_after"] <= calibration["brier_before"] + 0.05
    evaluation = evaluate(trained_run, load_dataset(ham_folder, size=28), n_boot=0, explain=False)
    write_evaluation(evaluation, tmp_path / "e")
    effect = json.loads((tmp_path / "e" / "metrics.json").read_text())["calibration"]
    assert effect["temperature"] == calibration["temperature"]
    assert {"ece_before", "ece_after", "brier_before", "brier_after"} <= effect.keys()


def test_gradcam_examples_are_the_surest_right_and_wrong_of_each_class() -> None:
    y_true = np.array([0, 0, 0, 1, 1])
    probs = np.full((5, 7), 0.01)
    probs[[0, 1, 2, 3, 4], [0, 0, 1, 1, 0]] = [0.5, 0.9, 0.7, 0.6, 0.8]  # rows 2 and 4 are wrong
    # class 0: right rows 0 and 1 (1 surer), wrong row 2; class 1: right row 3, wrong row 4; none else.
    assert gradcam_examples(y_true, probs).tolist() == [1, 2, 3, 4]


def test_evaluation_carries_images_and_their_gradcam_maps(trained_run: Path, ham_folder: Path) -> None:
    evaluation = evaluate(trained_run, load_dataset(ham_folder, size=28), n_boot=0)
    assert evaluation.images.shape == (len(evaluation.y_true), 28, 28, 3)
    assert evaluation.gradcam_rows.tolist() == gradcam_examples(evaluation.y_true, evaluation.probs).tolist()
    assert evaluation.gradcam_maps.shape == (len(evaluation.gradcam_rows), 28, 28)
    assert np.isfinite(evaluation.gradcam_maps).all()


def test_metadata_scores_the_calibrated_probabilities_times_the_evidence(
    trained_run: Path, trained_data: Path, labelled_folder: Path, tmp_path: Path
) -> None:
    from skinpamper.scoring.calibration import apply_temperature
    from skinpamper.scoring.metadata_model import fuse
    from skinpamper.training.run import Run

    run = Run.open(trained_run)
    model = run.metadata_model()
    assert model is not None  # the fixture's metadata records age, sex and site
    dataset = load_dataset(trained_data, size=28)
    evaluation = evaluate(trained_run, dataset, tta=True, n_boot=0, explain=False)
    test = dataset.subset(run.split(dataset).test)
    evidence = model.log_likelihood(test.meta, "test")
    # every probability of an evaluation is calibrated, as predict reports it
    np.testing.assert_allclose(
        evaluation.probs, apply_temperature(evaluation.probs_uncalibrated, run.temperature())
    )
    expected = fuse(evaluation.probs_tta, evidence)
    np.testing.assert_allclose(evaluation.probs_metadata, expected, atol=1e-9)
    assert evaluation.metrics_metadata["n"] == len(test)
    folder = write_evaluation(evaluation, tmp_path / "e")
    assert json.loads((folder / "metrics.json").read_text())["with_metadata"]["n"] == len(test)
    table = pd.read_csv(folder / "predictions.csv")
    assert (table["predicted_with_metadata"] == [CODES[i] for i in expected.argmax(axis=1)]).all()

    external = evaluate(trained_run, load_dataset(labelled_folder, size=28), external=True, n_boot=0)
    assert external.metrics_metadata is None and external.probs_metadata is None  # labels.csv has none
    assert "with_metadata" not in pd.read_csv(write_evaluation(external, tmp_path / "x") / "predictions.csv")


def test_an_external_set_naming_sites_otherwise_is_still_scored(trained_run: Path, ham_folder: Path) -> None:
    meta_path = ham_folder / "HAM10000_metadata.csv"
    meta = pd.read_csv(meta_path)
    meta.loc[::4, "localization"] = "anterior torso"  # ISIC 2019's name for what HAM10000 calls trunk
    # other images than the run's: the same pixels under other ids (the run's own would be refused)
    for photo in ham_folder.rglob("ISIC_*.jpg"):
        photo.rename(photo.with_name(photo.name.replace("ISIC_", "EXT_")))
    meta["image_id"] = meta["image_id"].str.replace("ISIC_", "EXT_")
    for csv in ham_folder.glob("hmnist_*.csv"):
        csv.unlink()
    meta.to_csv(meta_path, index=False)
    evaluation = evaluate(
        trained_run, load_dataset(ham_folder, size=28), external=True, n_boot=0, explain=False
    )
    assert evaluation.metrics["n"] == len(meta)
    assert evaluation.metrics_metadata["unseen_values_ignored"] == {"sex": 0, "site": len(meta[::4])}


def test_subgroups_with_missing_metadata_are_unknown_or_absent(trained_run: Path, tmp_path: Path) -> None:
    """An external set without age, sex or site still evaluates; a column with every value missing
    breaks nothing down, and a partly missing one gets an 'unknown' group."""
    folder = tmp_path / "external"
    folder.mkdir()
    ids = [f"x{i}" for i in range(14)]
    for i, image_id in enumerate(ids):
        Image.fromarray(np.full((30, 40, 3), 10 * i, np.uint8)).save(folder / f"{image_id}.png")
    labels = pd.DataFrame({"image_id": ids, "dx": [CODES[i % 7] for i in range(14)]})
    labels.to_csv(folder / "labels.csv", index=False)
    dataset = load_dataset(folder, size=28)
    evaluation = evaluate(trained_run, dataset, external=True, n_boot=10, explain=False)
    assert evaluation.subgroups["overall"]["n"] == 14 and evaluation.subgroups["groups"] == []
    meta = dataset.meta.copy()
    meta["sex"] = ["male"] * 7 + [None] * 7
    partly = dataclasses.replace(dataset, meta=meta)
    groups = evaluate(trained_run, partly, external=True, n_boot=10, explain=False).subgroups["groups"]
    assert [(g["group"], g["n"], g["too_few"]) for g in groups] == [("male", 7, True), ("unknown", 7, True)]
