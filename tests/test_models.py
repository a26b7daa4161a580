"""Every registered model builds and trains a step; the seed CNN matches the original's layer table."""

from __future__ import annotations

import numpy as np
import pytest

from skinpamper.errors import ConfigError
from skinpamper.models import create_model, get_model_info, list_models

# The original notebook's summary, up to its last pooling layer: (layer type, output shape, parameters).
SEED_TABLE = [
    ("Conv2D", (27, 27, 64), 832),
    ("MaxPooling2D", (13, 13, 64), 0),
    ("BatchNormalization", (13, 13, 64), 256),
    ("Conv2D", (12, 12, 512), 131584),
    ("MaxPooling2D", (6, 6, 512), 0),
    ("BatchNormalization", (6, 6, 512), 2048),
    ("Dropout", (6, 6, 512), 0),
    ("Conv2D", (5, 5, 1024), 2098176),
    ("MaxPooling2D", (2, 2, 1024), 0),
]


@pytest.mark.parametrize("name", list_models())
def test_model_builds_and_takes_a_training_step(name: str) -> None:
    size = get_model_info(name).default_size
    model = create_model(name, image_size=size)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    images = np.random.default_rng(0).uniform(0, 255, (4, size, size, 3)).astype(np.float32)
    loss = model.train_on_batch(images, np.array([0, 1, 5, 6]))
    assert np.isfinite(loss)
    probs = model.predict(images, verbose=0)
    assert probs.shape == (4, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_seed_matches_the_original_layer_table() -> None:
    model = create_model("seed", image_size=28)
    layers = [layer for layer in model.layers if type(layer).__name__ != "Rescaling"]
    rows = [(type(layer).__name__, tuple(layer.output.shape[1:]), layer.count_params()) for layer in layers]
    assert rows[: len(SEED_TABLE)] == SEED_TABLE


def test_unknown_model_lists_the_valid_names() -> None:
    with pytest.raises(ConfigError, match="seed"):
        create_model("resnet9000")
