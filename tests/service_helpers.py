"""Helpers for the predict, export, service and browser tests: test images and a Keras-free interpreter."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys

import numpy as np
from PIL import Image

from helpers import make_images
from skinpamper.scoring.abstention import Abstention
from skinpamper.serving.predict import Predictor


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo(width: int = 60, height: int = 45, seed: int = 5) -> Image.Image:
    """A non-square RGB photo with structure (a bright disc off centre), so orientation matters."""
    pixels = make_images(1, height, width, seed=seed)[0] // 2
    yy, xx = np.mgrid[:height, :width]
    pixels[(yy - height // 3) ** 2 + (xx - width // 4) ** 2 < (height // 5) ** 2] = 250
    return Image.fromarray(pixels)


def with_thresholds(
    predictor: Predictor,
    ood: float | None = None,
    confidence: float | None = None,
    unfamiliar: float | None = None,
) -> Predictor:
    """The same model with its abstention thresholds moved: every status can be driven on purpose (a
    one-epoch test model is unsure of everything, and random test photos are far from its data).

    `ood` moves every threshold that refuses (the OOD distance's, the far one and the dermoscopy
    detector's, where the run has them) and the one that says unfamiliar; `unfamiliar` then moves
    that last one alone."""
    rules = Abstention.from_dict(predictor.card.abstention, "card")
    moved = {
        k: dataclasses.replace(v, threshold=v.threshold if confidence is None else confidence)
        for k, v in rules.confidence.items()
    }
    rules = dataclasses.replace(rules, confidence=moved)
    if ood is not None:
        separated = rules.dermoscopy_threshold is not None
        rules = dataclasses.replace(
            rules,
            ood_threshold=ood,
            far_ood_threshold=ood if separated else None,
            dermoscopy_threshold=ood if separated else None,
        )
    if unfamiliar is not None:
        rules = dataclasses.replace(rules, ood_threshold=unfamiliar)
    card = dataclasses.replace(predictor.card, abstention=rules.to_dict())
    return Predictor(predictor.engine, card, predictor.backend, predictor.tta, model=predictor.model)


def answering(predictor: Predictor) -> Predictor:
    """`predictor` with thresholds that call every image ok, for tests about the answer itself."""
    return with_thresholds(predictor, ood=1e30, confidence=0.0)


BLOCK_TRAINING_BACKENDS = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("keras", "tensorflow", "tf2onnx", "torch", "jax"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
sys.meta_path.insert(0, Block())
"""


def run_without_keras(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter where importing Keras, TensorFlow or tf2onnx fails."""
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TRAINING_BACKENDS + code], capture_output=True, text=True, timeout=120
    )


HEALTHZ_MS = 100  # every probe's answer, but for one
HICCUP_MS = 1000  # the one: a test worker beside it on 2 cores can take a scheduler slice


def assert_probes_answered_fast(latencies_ms: list[float]) -> None:
    """`/healthz` did not wait behind the clients under test: every probe within HEALTHZ_MS but the
    slowest, and that within HICCUP_MS. A server that waited would take the clients' seconds-long
    timeouts, or be slow at every probe."""
    ordered = sorted(latencies_ms)
    assert ordered[-2] < HEALTHZ_MS and ordered[-1] < HICCUP_MS, [round(ms, 1) for ms in ordered[-5:]]
