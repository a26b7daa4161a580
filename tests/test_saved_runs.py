"""Runs and ONNX exports saved by earlier versions keep loading.

tests/fixtures/run_v0_1 was trained and exported by Skin Pamper before the package was grouped into
stages (tiny compact_cnn, colour-constancy layer, logit-adjusted loss, metadata model); expected.json
holds the probabilities it gave then. Keras stores each custom class's registered name in the file,
so moving modules must not change those names. Loading happens in a fresh process, where nothing has
imported the custom classes yet, as for a user.
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

from conftest import write_ham_folder
from skinpamper.cli import main

FIXTURE = Path(__file__).parent / "fixtures" / "run_v0_1"
SCRIPT = """
import json, sys
import numpy as np
from skinpamper.serving.predict import Predictor
images = np.random.default_rng(7).integers(0, 256, (3, 28, 28, 3), dtype=np.uint8)
predictor = Predictor.load(sys.argv[1])
rows = [list(p.probabilities) for p in predictor.predict_arrays(images, ["a", "b", "c"])]
print(json.dumps({"model_id": predictor.card.model_id, "probabilities": rows}))
"""


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    """A copy, so that nothing a command writes can change the committed fixture."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "run_v0_1"))


@pytest.mark.parametrize("kind", ["keras", "onnx"])
def test_an_old_run_predicts_as_it_did(old_run: Path, kind: str) -> None:
    expected = json.loads((FIXTURE / "expected.json").read_text())
    target = old_run if kind == "keras" else old_run / "model.onnx"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(target)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["model_id"] == expected["model_id"]
    np.testing.assert_allclose(result["probabilities"], expected[kind], atol=1e-6)


def test_an_old_run_evaluates(old_run: Path, tmp_path: Path) -> None:
    # The same images, ids and labels it was trained on, moved to where this machine keeps them;
    # --data would be refused (it holds the training images), so the run's own record points there.
    data = write_ham_folder(tmp_path / "ham")
    config = json.loads((old_run / "config.json").read_text())
    (old_run / "config.json").write_text(json.dumps({**config, "data_path": str(data)}))
    out = tmp_path / "eval"
    result = CliRunner().invoke(main, ["evaluate", str(old_run), "--out", str(out), "--no-tta"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    recorded = json.loads((FIXTURE / "metrics.json").read_text())
    assert metrics["plain"]["balanced_accuracy"] == pytest.approx(recorded["test"]["balanced_accuracy"])


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
