"""Runs and ONNX exports saved by earlier versions keep loading.

tests/fixtures/run_v0_1 was trained and exported by Skin Pamper before the package was grouped into
stages (tiny compact_cnn, colour-constancy layer, logit-adjusted loss, metadata model), before OOD
detection; tests/fixtures/run_main_9132af7 by main at 9132af7, the last format without run.json
(compact_cnn at width 0.25, 2 epochs, bfloat16, metadata model, OOD detector and abstention rules).
Both are run folder format 0 (runfolder/migrations.py). Each expected.json holds the probabilities
(and, for the second, the statuses) it gave then. Keras stores each custom class's registered name in
the file, so moving modules must not change those names. Loading happens in a fresh process, where
nothing has imported the custom classes yet, as for a user.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import write_ham_folder
from skinpamper.cli import main

FIXTURE = Path(__file__).parent / "fixtures" / "run_v0_1"
TODAY = Path(__file__).parent / "fixtures" / "run_main_9132af7"
SCRIPT = """
import json, sys
import numpy as np
from skinpamper.serving.predict import Predictor
images = np.random.default_rng(7).integers(0, 256, (3, 28, 28, 3), dtype=np.uint8)
predictor = Predictor.load(sys.argv[1])
predictions = predictor.predict_arrays(images, ["a", "b", "c"])
rows = [list(p.probabilities) for p in predictions]
statuses = [p.status for p in predictions]
print(json.dumps({"model_id": predictor.card.model_id, "probabilities": rows, "status": statuses}))
"""


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    """A copy, so that nothing a command writes can change the committed fixture."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "run_v0_1"))


@pytest.fixture
def todays_run(tmp_path: Path) -> Path:
    return Path(shutil.copytree(TODAY, tmp_path / "run_main_9132af7"))


def _predict_in_a_fresh_process(target: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(target)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", [pytest.param("keras", marks=pytest.mark.slow), "onnx"])  # keras: seconds
def test_an_old_run_predicts_as_it_did(old_run: Path, kind: str) -> None:
    expected = json.loads((FIXTURE / "expected.json").read_text())
    result = _predict_in_a_fresh_process(old_run if kind == "keras" else old_run / "model.onnx")
    assert result["model_id"] == expected["model_id"]
    np.testing.assert_allclose(result["probabilities"], expected[kind], atol=1e-6)
    assert result["status"] == ["unchecked"] * 3  # saved before OOD detection


@pytest.mark.slow
def test_todays_run_predicts_as_it_did(todays_run: Path) -> None:
    expected = json.loads((TODAY / "expected.json").read_text())
    result = _predict_in_a_fresh_process(todays_run)
    assert result["model_id"] == expected["model_id"]
    np.testing.assert_allclose(result["probabilities"], expected["keras"], atol=1e-6)
    assert result["status"] == expected["status"]


@pytest.mark.slow
@pytest.mark.parametrize("fixture", [FIXTURE, TODAY], ids=lambda p: p.name)
def test_a_saved_run_evaluates(fixture: Path, tmp_path: Path) -> None:
    # The same images, ids and labels it was trained on, moved to where this machine keeps them;
    # --data would be refused (it holds the training images), so the run's own record points there.
    run = Path(shutil.copytree(fixture, tmp_path / fixture.name))
    data = write_ham_folder(tmp_path / "ham")
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "data_path": str(data)}))
    out = tmp_path / "eval"
    result = CliRunner().invoke(main, ["evaluate", str(run), "--out", str(out), "--no-tta"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    recorded = json.loads((fixture / "metrics.json").read_text())
    assert metrics["plain"]["balanced_accuracy"] == pytest.approx(recorded["test"]["balanced_accuracy"])
    assert (out / "model_card.md").is_file()


def test_todays_run_serves(todays_run: Path) -> None:
    from fastapi.testclient import TestClient

    from service_helpers import encode, photo
    from skinpamper.serving.predict import Predictor
    from skinpamper.serving.service.app import create_app
    from skinpamper.serving.service.settings import ServeSettings

    predictor = Predictor.load(todays_run)
    image = encode(photo(), "JPEG")
    with TestClient(create_app(predictor, ServeSettings())) as client:
        card = client.get("/v1/model").json()
        response = client.post("/v1/predict", files=[("files", ("lesion.jpg", image, "image/jpeg"))])
    assert card["model_id"] == json.loads((TODAY / "expected.json").read_text())["model_id"]
    assert card["calibrated"] is True
    assert response.status_code == 200, response.text
    (item,) = response.json()["predictions"]
    (expected,) = predictor.predict([image])
    np.testing.assert_allclose(list(item["probabilities"].values()), expected.probabilities, atol=1e-6)
    assert item["status"] == expected.status != "unchecked"  # today's runs carry an OOD detector


@pytest.mark.parametrize("fixture", [FIXTURE, TODAY], ids=lambda p: p.name)
def test_a_saved_run_is_format_0_and_reads_as_the_current_format(fixture: Path) -> None:
    from skinpamper.runfolder import RunFolder

    run = RunFolder.open(fixture)
    assert run.format_version() == 0
    assert run.training_precision() in ("float32", "bfloat16")
    assert run.config_record()["colour_constancy"] is (fixture == FIXTURE)
    assert len(run.history()) == run.state().epoch


@pytest.mark.slow
def test_resuming_a_finished_old_run_fits_its_ood_detector(old_run: Path, tmp_path: Path) -> None:
    from skinpamper.data.load import load_dataset
    from skinpamper.serving.predict import Predictor
    from skinpamper.training.train import resume

    dataset = load_dataset(write_ham_folder(tmp_path / "ham"), size=28)
    resume(old_run, dataset)
    assert (old_run / "abstention.json").is_file() and (old_run / "ood_detector.npz").is_file()
    predictor = Predictor.load(old_run)
    assert predictor.checks_status
    images = np.random.default_rng(7).integers(0, 256, (3, 28, 28, 3), dtype=np.uint8)
    expected = json.loads((FIXTURE / "expected.json").read_text())["keras"]
    predictions = predictor.predict_arrays(images, ["a", "b", "c"])
    assert all(p.status != "unchecked" for p in predictions)
    # the model itself is unchanged: the same probabilities as before (the temperature is refitted
    # on the same validation split, so it is the same too)
    np.testing.assert_allclose([p.probabilities for p in predictions], expected, atol=1e-6)
