"""ONNX export of a run's best model, kept only if onnxruntime reproduces Keras's probabilities.

The graph has one input, `images` (batch, S, S, 3) float32 in 0..255 with a dynamic batch size, and
the outputs `probabilities`, the softmax (batch, 7) in canonical class order, for runs with an
OOD detector `ood_score` (batch,), and for runs with a dermoscopy detector `not_dermoscopy` (batch,),
its log-odds. The run's ModelCard (size, fit, temperature, abstention
thresholds, test metrics, model id) is stored in the file's metadata, so the file alone is enough to
serve.
Conversion goes through Keras 3's `model.export(format="onnx")`, which uses tf2onnx on TensorFlow.
"""

from __future__ import annotations

import gc
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import patch

import numpy as np

from skinpamper.atomic import replace_into
from skinpamper.errors import ConfigError, ExportError
from skinpamper.runfolder.files import ONNX_EXPORT
from skinpamper.serving.onnx_join import join_members
from skinpamper.serving.predict import DERMOSCOPY_OUTPUT, ONNX_METADATA_KEY, OOD_OUTPUT, ModelCard, run_card

PARITY_LIMIT = 1e-4  # max |p_onnx - p_keras|: float32 round-off is ~1e-7, a wrong conversion is ~1e-1
# max |s_onnx - s_keras| / max(s_keras, the run's OOD threshold): what decides a status is the score
# against the threshold, so an error is measured on that scale. The score is a sum of squares whose
# whitening magnifies the ~1e-6 by which TensorFlow's and onnxruntime's convolutions differ: 2.7e-3
# of the score on a barely trained EfficientNetB0, and scores near 0 (a degenerate one-epoch detector)
# made a per-score ratio meaningless. A wrong conversion is off by tens of percent.
SCORE_PARITY_LIMIT = 1e-2
PARITY_SAMPLES = 32


@dataclass(frozen=True)
class ExportResult:
    path: Path
    card: ModelCard
    max_abs_diff: float  # over PARITY_SAMPLES random images, every class
    samples: int


def export_onnx(
    run_dir: str | Path, out: str | Path | None = None, samples: int = PARITY_SAMPLES
) -> ExportResult:
    """Write the run's best model as ONNX (default RUN/model.onnx) after checking parity with Keras.

    The file appears only when the check passes; otherwise ExportError says by how much it failed.
    """
    import keras

    from skinpamper.models.features import ensemble_members
    from skinpamper.training.run import Run

    run = Run.open(run_dir)
    path = Path(out) if out is not None else run.file(ONNX_EXPORT)
    if path.suffix.lower() != ".onnx":  # checked before the model is loaded: a typo should fail fast
        raise ConfigError(f"{path}: the export's file name must end in .onnx")
    card = run_card(run)
    loaded = run.load_model()
    model = run.serving_model(loaded)
    members = ensemble_members(loaded)
    _normalisation_as_constants(model)
    names = ("probabilities", OOD_OUTPUT, DERMOSCOPY_OUTPUT)[: len(model.outputs)]
    # Fixed random images: parity must hold for any input, and the run's data may not be on this machine.
    images = np.random.default_rng(0).integers(0, 256, (samples, card.image_size, card.image_size, 3))
    images = images.astype(np.float32)
    outputs = model.predict_on_batch(images)
    expected = [np.asarray(o) for o in outputs] if len(names) > 1 else [np.asarray(outputs)]
    spec = keras.InputSpec(shape=(None, card.image_size, card.image_size, 3), dtype="float32", name="images")
    diff = 0.0

    def write(temporary: Path) -> None:
        nonlocal diff
        try:
            if members:
                _convert_ensemble(members, run.detector_weights(), temporary, spec)
            else:
                _convert(model, temporary, [spec])
            _finish_graph(temporary, card, names)
            got = _onnx_outputs(temporary, images, names)
        except ImportError as exc:
            raise ExportError(
                f"{path}: ONNX export needs {exc.name}: pip install 'skinpamper[export]'"
            ) from None
        diff = float(np.abs(got[0] - expected[0]).max())
        if diff > PARITY_LIMIT:
            raise ExportError(
                f"{path}: ONNX probabilities differ from Keras by up to {diff:.2e} (limit "
                f"{PARITY_LIMIT:.0e}); the file was not written"
            )
        if len(names) > 1:
            _check_scores(path, got[1:], expected[1:], run.abstention()[1].ood_threshold)

    path.parent.mkdir(parents=True, exist_ok=True)
    replace_into(path, write)
    return ExportResult(path, card, diff, samples)


def _check_scores(
    path: Path, got: list[np.ndarray], expected: list[np.ndarray], ood_threshold: float
) -> None:
    """ExportError when the OOD score or the dermoscopy log-odds drift from Keras's: the score on the
    scale of max(score, threshold), the log-odds on that of max(|log-odds|, 1). A flat OOD detector
    (scoring.ood.RESOLUTION) scores 0 with a threshold of 0: the tiny floor compares it exactly."""
    floors = (max(ood_threshold, float(np.finfo(np.float32).tiny)), 1.0)
    for name, new, old, floor in zip(
        ("OOD scores", "dermoscopy log-odds"), got, expected, floors, strict=False
    ):
        relative = float((np.abs(new - old) / np.maximum(np.abs(old), floor)).max())
        if relative > SCORE_PARITY_LIMIT:
            raise ExportError(
                f"{path}: ONNX {name} differ from Keras by up to {relative:.2e} of their value or "
                f"threshold (limit {SCORE_PARITY_LIMIT:.0e}); the file was not written"
            )


def _convert(model: object, path: Path, specs: list) -> None:
    """tf2onnx's conversion of `model` (Keras's export), written to `path`.

    TF2ONNX_CATCH_ERRORS=FALSE: by default tf2onnx deep-copies the whole graph, weights included,
    before each of its optimizer passes so that a failing pass can be skipped; a ResNet50 then peaked
    at 7.5 GB instead of 4.7. A pass that fails now fails the export, which the parity check would
    otherwise have to catch.
    """
    with warnings.catch_warnings(), patch.dict(os.environ, {"TF2ONNX_CATCH_ERRORS": "FALSE"}):
        warnings.simplefilter("ignore", FutureWarning)  # Keras's tf2onnx patch for NumPy 2 probes np.object
        model.export(str(path), format="onnx", verbose=False, input_signature=specs)


def _convert_ensemble(members: list, detectors: tuple | None, path: Path, spec: object) -> None:
    """An ensemble converted one member at a time, then joined with its head (`serving.onnx_join`):
    the peak memory of one member instead of all of them."""
    import keras
    import onnx

    from skinpamper.models.features import feature_model
    from skinpamper.models.ood_head import ensemble_head

    parts = [feature_model(member) if detectors else member for member in members]
    converted = []
    for part in parts:
        _convert(part, path, [spec])
        converted.append(onnx.load(str(path)))
        gc.collect()  # tf2onnx's graph copies hold references in cycles: free them before the next
    head = ensemble_head(parts, detectors)
    specs = [keras.InputSpec(shape=(None, *x.shape[1:]), dtype="float32", name=x.name) for x in head.inputs]
    _convert(head, path, [specs])
    onnx.save(join_members(converted, onnx.load(str(path))), str(path))


def _normalisation_as_constants(model: object) -> None:
    """Give Normalization layers (keras.applications EfficientNetB0's, ResNet50's ImageNet mean) their
    mean and variance as NumPy arrays: Keras keeps them as eager tensors, which tf2onnx turned into
    extra graph inputs the file could not be run without; arrays are traced as constants."""
    import keras

    for layer in model._flatten_layers(include_self=False):  # nested models included
        if isinstance(layer, keras.layers.Normalization) and layer.mean is not None:
            layer.mean = keras.ops.convert_to_numpy(layer.mean)
            layer.variance = keras.ops.convert_to_numpy(layer.variance)


def _finish_graph(path: Path, card: ModelCard, names: tuple[str, ...]) -> None:
    """Name the batch dimension and the outputs, and store the card, so the file explains itself."""
    import onnx

    graph = onnx.load(str(path))
    for value in (*graph.graph.input, *graph.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    renames = {output.name: name for output, name in zip(graph.graph.output, names, strict=True)}
    for node in graph.graph.node:
        node.output[:] = [renames.get(name, name) for name in node.output]
    for output in graph.graph.output:
        output.name = renames[output.name]
    entry = graph.metadata_props.add()
    entry.key, entry.value = ONNX_METADATA_KEY, json.dumps(card.to_dict())
    onnx.checker.check_model(graph)
    onnx.save(graph, str(path))


def _onnx_outputs(path: Path, images: np.ndarray, names: tuple[str, ...]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(list(names), {"images": images})
