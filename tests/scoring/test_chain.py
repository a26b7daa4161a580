"""The one inference chain: its order of steps, and the same answer from every door an image comes in by."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from skinpamper.classes import CODES
from skinpamper.cli import main
from skinpamper.scoring.abstention import Abstention, ConfidenceChoice
from skinpamper.scoring.calibration import apply_temperature
from skinpamper.scoring.chain import BATCH, Chain
from skinpamper.scoring.metadata_model import PatientInfo, fuse
from skinpamper.serving.export import PARITY_LIMIT
from skinpamper.serving.predict import Predictor
from skinpamper.serving.service.app import create_app
from skinpamper.serving.service.settings import ServeSettings

PROBS = [f"p_{code}" for code in CODES]
FUSED = [f"m_{code}" for code in CODES]  # with the patient's age, sex and site


def _rules(ood_threshold: float, confidence: float) -> Abstention:
    choice = ConfidenceChoice(threshold=confidence, coverage=1.0, balanced_accuracy=1.0, reached=True)
    return Abstention("score", 0.95, ood_threshold, 0.8, {"plain": choice, "tta": choice})


def test_chain_calibrates_then_fuses_and_reads_the_status_from_the_image_alone() -> None:
    rng = np.random.default_rng(0)
    raw = rng.dirichlet(np.ones(7), size=BATCH + 3)  # more than one engine call
    ood = np.linspace(0.0, 2.0, len(raw))
    images = np.zeros((len(raw), 4, 4, 3), np.uint8)
    images[:, 0, 0, 0], images[:, 0, 0, 1] = np.divmod(np.arange(len(raw)), 256)  # each image's row

    def rows(batch: np.ndarray) -> np.ndarray:
        return batch[:, 0, 0, 0].astype(int) * 256 + batch[:, 0, 0, 1].astype(int)

    def engine(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return raw[rows(batch)], ood[rows(batch)]

    evidence = np.zeros((len(raw), 7))
    evidence[::2, 4] = 3.0  # metadata speaks for melanoma, for every other image
    chain = Chain(engine, temperature=2.0, abstention=_rules(ood_threshold=1.0, confidence=0.3))
    scored = chain.score(images, evidence)
    calibrated = apply_temperature(raw, 2.0)
    np.testing.assert_allclose(scored.uncalibrated, raw)
    np.testing.assert_allclose(scored.image_probabilities, calibrated)
    np.testing.assert_allclose(scored.probabilities, fuse(calibrated, evidence))
    assert scored.with_metadata.tolist() == [i % 2 == 0 for i in range(len(raw))]
    np.testing.assert_allclose(scored.ood_scores, ood)
    expected = [
        "out_of_distribution" if s > 1.0 else "ok" if p.max() >= 0.3 else "uncertain"
        for s, p in zip(ood, calibrated, strict=True)
    ]
    assert scored.statuses == expected

    without = Chain(lambda batch: (raw[rows(batch)], None)).score(images)
    np.testing.assert_allclose(without.probabilities, raw)  # no temperature, no metadata
    assert without.ood_scores is None and set(without.statuses) == {"unchecked"}


def _patients(meta: pd.DataFrame) -> dict[str, PatientInfo]:
    return {
        row.image_id: PatientInfo(None if math.isnan(row.age) else row.age, row.sex, row.localization)
        for row in meta.itertuples()
    }


def _frame(predictions: list[dict], columns: list[str]) -> pd.DataFrame:
    """Items of predict's JSON or the service's answer, as image id -> probabilities and status."""
    rows = {
        Path(p["image"]).stem: [p["probabilities"][code] for code in CODES] + [p["status"]]
        for p in predictions
    }
    return pd.DataFrame.from_dict(rows, orient="index", columns=[*columns, "status"])


def _predict_json(model: Path, paths: list[Path], tta: bool, *extra: str) -> list[dict]:
    args = [
        "predict",
        str(model),
        *map(str, paths),
        "--format",
        "json",
        "--tta" if tta else "--no-tta",
        *extra,
    ]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["predictions"]


def _predict_out(model: Path, paths: list[Path], tta: bool, out: Path, *extra: str) -> pd.DataFrame:
    args = [
        "predict",
        str(model),
        *map(str, paths),
        "--out",
        str(out),
        "--tta" if tta else "--no-tta",
        *extra,
    ]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out).set_index("image")
    table.index = [Path(name).stem for name in table.index]
    return table


def _doors(model: Path, paths: list[Path], meta_csv: Path, tta: bool, tmp: Path) -> dict[str, pd.DataFrame]:
    """What predict (JSON, --out CSV), the Predictor and the service say of `paths`: per door, image id ->
    image-only probabilities (p_), with the patients' metadata (m_) and status."""
    patients = _patients(pd.read_csv(meta_csv))
    infos = [patients[path.stem] for path in paths]
    json_door = _frame(_predict_json(model, paths, tta), PROBS).join(
        _frame(_predict_json(model, paths, tta, "--metadata", str(meta_csv)), FUSED).drop(columns="status")
    )
    plain = _predict_out(model, paths, tta, tmp / "plain.csv")
    fused = _predict_out(model, paths, tta, tmp / "fused.csv", "--metadata", str(meta_csv))
    out_door = plain[[*PROBS, "status"]].join(fused[PROBS].set_axis(FUSED, axis=1))
    predictor = Predictor.load(model, tta=tta)
    api_door = _frame([p.to_dict() for p in predictor.predict(paths)], PROBS).join(
        _frame([p.to_dict() for p in predictor.predict(paths, patients=infos)], FUSED).drop(columns="status")
    )
    with TestClient(create_app(predictor, ServeSettings(tta=tta))) as client:
        answer, with_metadata = [], []
        for path, info in zip(paths, infos, strict=True):
            upload = [("files", (path.name, path.read_bytes(), "image/jpeg"))]
            answer += client.post("/v1/predict", files=upload).json()["predictions"]
            query = {key: value for key, value in vars(info).items() if value is not None}
            with_metadata += client.post("/v1/predict", params=query, files=upload).json()["predictions"]
    service_door = _frame(answer, PROBS).join(_frame(with_metadata, FUSED).drop(columns="status"))
    return {"predict": json_door, "predict --out": out_door, "Predictor": api_door, "service": service_door}


def _evaluate_door(run: Path, tta: bool, out: Path) -> pd.DataFrame:
    args = ["evaluate", str(run), "--bootstrap", "0", "--out", str(out), "--tta" if tta else "--no-tta"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "predictions.csv").set_index("image_id")
    return table[[*PROBS, "status"]].join(
        table[[f"with_metadata_{c}" for c in CODES]].set_axis(FUSED, axis=1)
    )


def _assert_same(doors: dict[str, pd.DataFrame], reference: pd.DataFrame, atol: float) -> None:
    for name, door in doors.items():
        door = door.loc[reference.index]
        np.testing.assert_allclose(door[PROBS + FUSED], reference[PROBS + FUSED], atol=atol, err_msg=name)
        assert door["status"].tolist() == reference["status"].tolist(), name


@pytest.mark.parametrize(
    "tta", [pytest.param(True, marks=pytest.mark.slow), False], ids=["tta", "no-tta"]
)  # with TTA every door scores 8 views of each image
def test_every_door_gives_the_same_probabilities_and_statuses(
    trained_run: Path, trained_data: Path, onnx_model: Path, tta: bool, tmp_path: Path
) -> None:
    meta_csv = trained_data / "HAM10000_metadata.csv"
    test_ids = json.loads((trained_run / "split.json").read_text())["test"]
    paths = [next(trained_data.rglob(f"{i}.jpg")) for i in test_ids]
    evaluated = _evaluate_door(trained_run, tta, tmp_path / "evaluation")
    assert evaluated.index.tolist() == test_ids
    # the metadata moves some images, so the fused columns test the metadata step, not a copy of p_
    assert np.abs(evaluated[FUSED].to_numpy() - evaluated[PROBS].to_numpy()).max() > 1e-3
    for backend in ("keras", "onnx"):
        (tmp_path / backend).mkdir()
    keras_doors = _doors(trained_run, paths, meta_csv, tta, tmp_path / "keras")
    # predictions.csv holds 6 decimals: the Keras doors agree with it, and each other, to 1e-6
    _assert_same(keras_doors, evaluated, atol=1e-6)
    onnx_doors = _doors(onnx_model, paths, meta_csv, tta, tmp_path / "onnx")
    _assert_same(onnx_doors, onnx_doors["Predictor"], atol=1e-6)
    _assert_same(onnx_doors, keras_doors["Predictor"], atol=PARITY_LIMIT)  # float32 round-off of the export
