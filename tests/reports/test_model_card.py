"""model_card.md: written with every run and evaluation, generated from the run's own files, served."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from skinpamper import NOT_A_DIAGNOSIS
from skinpamper.cli import main
from skinpamper.reports.model_card import model_card

SECTIONS = (  # Mitchell et al. 2019, plus how the model treats images unlike its training data
    "## Model details",
    "## Intended use",
    "## Out-of-scope use",
    "## Factors",
    "## Metrics",
    "## Training data",
    "## Evaluation data",
    "## Quantitative analyses",
    "### By subgroup",
    "## Out-of-distribution behaviour",
    "## Ethical considerations and caveats",
    "## Not a diagnosis",
)
OLD_RUN = Path(__file__).parents[1] / "fixtures" / "run_v0_1"


def _in_order(card: str, headings: tuple[str, ...]) -> bool:
    positions = [card.find(f"\n{h}\n") for h in headings]
    return all(p >= 0 for p in positions) and positions == sorted(positions)


def test_a_trained_run_has_its_card_with_every_section(trained_run: Path) -> None:
    card = (trained_run / "model_card.md").read_text(encoding="utf-8")
    assert _in_order(card, SECTIONS) and NOT_A_DIAGNOSIS in card
    metrics = json.loads((trained_run / "metrics.json").read_text())
    overall = metrics["subgroups"]["overall"]
    low, high = overall["balanced_accuracy_ci95"]
    assert f"balanced accuracy: {overall['balanced_accuracy']:.3f} (95% CI {low:.3f}-{high:.3f})" in card
    rules = json.loads((trained_run / "abstention.json").read_text())
    assert f"above {rules['ood_threshold']:.1f}" in card and "answered ok" in card
    assert f"{metrics['test']['n']:,} images" in card


def test_the_card_follows_the_files_it_is_made_from(trained_run: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "model": "seed", "epochs": 7}))
    assert "seed at 28 px" in model_card(run) and "7 epochs" in model_card(run)


def test_an_evaluation_writes_a_card_with_its_own_figures(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        main, ["evaluate", str(trained_run), "--no-tta", "--bootstrap", "20", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    card = (out / "model_card.md").read_text(encoding="utf-8")
    evaluated = json.loads((out / "metrics.json").read_text())
    assert _in_order(card, SECTIONS)
    assert f"On the test images of {Path(evaluated['data']).name} (" in card and evaluated["data"] not in card
    assert f"balanced accuracy: {evaluated['subgroups']['overall']['balanced_accuracy']:.3f}" in card


def test_an_old_run_says_what_it_lacks(tmp_path: Path) -> None:
    card = model_card(Path(shutil.copytree(OLD_RUN, tmp_path / "old")))
    assert "has no out-of-distribution detector" in card
    assert "without intervals or subgroups" in card
    assert _in_order(card, tuple(h for h in SECTIONS if h != "### By subgroup"))


@pytest.mark.parametrize("kind", ["run", "onnx"])
def test_the_service_serves_the_card(trained_run: Path, onnx_model: Path, kind: str) -> None:
    from fastapi.testclient import TestClient

    from skinpamper.serving.predict import Predictor
    from skinpamper.serving.service.app import create_app

    predictor = Predictor.load(trained_run if kind == "run" else onnx_model)
    with TestClient(create_app(predictor)) as client:
        response = client.get("/v1/model/card")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/markdown")
    assert response.text.startswith(f"# Model card: {predictor.card.model_id}")
    assert "## Out-of-distribution behaviour" in response.text


def test_an_export_without_a_card_answers_404() -> None:
    from fastapi.testclient import TestClient

    from skinpamper.serving.predict import Predictor
    from skinpamper.serving.service.app import create_app

    with TestClient(create_app(Predictor.load(OLD_RUN / "model.onnx"))) as client:
        response = client.get("/v1/model/card")
    assert response.status_code == 404 and "export the run again" in response.json()["detail"]


@pytest.mark.parametrize("kind", ["run", "onnx"])
def test_nothing_published_names_the_data_folder(trained_run: Path, onnx_model: Path, kind: str) -> None:
    """The card, the ONNX file and every GET route name the dataset by its name and digest, never by
    the folders it lay in (which would publish the user's name)."""
    import onnx
    from fastapi.testclient import TestClient

    from helpers import DATA_USER
    from skinpamper.serving.predict import Predictor
    from skinpamper.serving.service.app import create_app

    local = str(trained_run.parent)  # the temporary tree: the data folder and the user's home in it
    published = {"model_card.md": (trained_run / "model_card.md").read_text(encoding="utf-8")}
    published |= {f"onnx {p.key}": p.value for p in onnx.load(str(onnx_model)).metadata_props}
    published["model.onnx bytes"] = onnx_model.read_bytes().decode("latin-1")
    app = create_app(Predictor.load(trained_run if kind == "run" else onnx_model))
    try:  # FastAPI 0.137+ keeps each included APIRouter as one node of app.routes; this expands them
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI copies their routes into app.routes
        iter_route_contexts = iter
    every = iter_route_contexts(app.routes)
    routes = [r.path for r in every if "GET" in (getattr(r, "methods", None) or ()) and "{" not in r.path]
    assert {"/", "/healthz", "/v1/model", "/v1/model/card", "/openapi.json", "/docs"} <= set(routes)
    with TestClient(app) as client:
        published |= {route: client.get(route).text for route in routes}
    for where, text in published.items():
        assert local not in text and DATA_USER not in text, where
    digest = json.loads((trained_run / "dataset.json").read_text())["digest"]
    assert f"images from `ham` (content digest `{digest}`)" in published["model_card.md"]
    assert digest in published["/v1/model/card"] and digest.startswith("sha256:")
