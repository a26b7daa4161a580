"""ONNX export: parity with Keras, a dynamic batch, the run's card inside, and no file when parity fails."""

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner

from skinpamper.cli import main
from skinpamper.errors import ConfigError, ExportError
from skinpamper.models.colour import with_colour_constancy
from skinpamper.models.features import feature_model
from skinpamper.serving import export
from skinpamper.serving.export import export_onnx
from skinpamper.serving.predict import ONNX_METADATA_KEY, run_card
from skinpamper.training.run import Run


def test_cli_export_prints_parity_within_limit(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "exports" / "seed.onnx"
    result = CliRunner().invoke(main, ["export", str(trained_run), "--format", "onnx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    parity = next(line for line in result.output.splitlines() if line.startswith("parity:"))
    assert float(parity.split("= ")[1].split()[0]) <= 1e-4 and parity.endswith("ok")
    assert f"wrote {out}" in result.output and out.is_file()


def test_export_has_dynamic_batch_named_io_and_the_run_card(onnx_model: Path, trained_run: Path) -> None:
    graph = onnx.load(str(onnx_model))
    (image_input,), outputs = graph.graph.input, graph.graph.output
    assert image_input.name == "images" and [o.name for o in outputs] == [
        "probabilities",
        "ood_score",
        "not_dermoscopy",
    ]
    assert [d.dim_param or d.dim_value for d in image_input.type.tensor_type.shape.dim] == [
        "batch",
        28,
        28,
        3,
    ]
    stored = json.loads({p.key: p.value for p in graph.metadata_props}[ONNX_METADATA_KEY])
    assert stored == run_card(Run.open(trained_run)).to_dict()

    session = ort.InferenceSession(str(onnx_model), providers=["CPUExecutionProvider"])
    run = Run.open(trained_run)
    model = run.load_model()
    detector, _ = run.abstention()
    features = feature_model(model)
    for batch in (1, 5):
        images = np.random.default_rng(batch).integers(0, 256, (batch, 28, 28, 3)).astype(np.float32)
        probs, scores = session.run(["probabilities", "ood_score"], {"images": images})
        assert probs.shape == (batch, 7) and scores.shape == (batch,)
        np.testing.assert_allclose(probs, model.predict_on_batch(images), atol=1e-4)
        # the OOD score in the graph is the detector's own, computed in float64 from the features
        expected = detector.score(np.asarray(features.predict_on_batch(images)[1]))
        np.testing.assert_allclose(scores, expected, rtol=1e-3)


def test_a_colour_constancy_model_exports_within_parity(trained_run: Path, tmp_path: Path) -> None:
    run = shutil.copytree(trained_run, tmp_path / "run", ignore=shutil.ignore_patterns("*.onnx"))
    model = keras.models.load_model(run / "model.keras")
    with_colour_constancy(model).save(run / "model.keras")
    result = export_onnx(run)
    assert result.path.exists() and result.max_abs_diff <= export.PARITY_LIMIT


def test_failed_parity_leaves_no_file(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = shutil.copytree(trained_run, tmp_path / "run", ignore=shutil.ignore_patterns("*.onnx"))
    monkeypatch.setattr(export, "PARITY_LIMIT", -1.0)  # no difference, not even 0, passes
    with pytest.raises(ExportError, match=r"model\.onnx: ONNX probabilities differ from Keras by up to"):
        export_onnx(run)
    assert sorted(p.name for p in run.iterdir() if "onnx" in p.name) == []


def test_output_must_be_an_onnx_file(trained_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.bin: the export's file name must end in \.onnx"):
        export_onnx(trained_run, tmp_path / "model.bin")
