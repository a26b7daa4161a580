"""Every registered model builds and trains a step; the seed CNN matches the original's layer table;
ImageNet backbones explain a failed weights download and read RGB as their preprocessing expects."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from helpers import every_model
from skinpamper.errors import ConfigError
from skinpamper.models import applications, create_model, get_model_info, list_models

SMALL = 32  # the smallest size every model accepts; keeps the ImageNet backbones fast to build and step

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


@pytest.mark.parametrize("name", every_model())
def test_model_builds_and_takes_a_training_step(name: str) -> None:
    info = get_model_info(name)
    size = min(info.default_size, SMALL)
    # weights that install with the package are loaded; those Keras downloads at run time cannot be
    model = create_model(name, image_size=size, pretrained=info.weights is None or info.weights.offline)
    # eager: tracing (and XLA-compiling) a backbone's train step takes ~45 s on CPU, the step itself ~1 s
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=True)
    images = np.random.default_rng(0).uniform(0, 255, (4, size, size, 3)).astype(np.float32)
    loss = model.train_on_batch(images, np.array([0, 1, 5, 6]))
    assert np.isfinite(loss)
    probs = keras.ops.convert_to_numpy(model(images, training=False))
    assert probs.shape == (4, 7)
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_seed_matches_the_original_layer_table() -> None:
    model = create_model("seed", image_size=28)
    layers = [layer for layer in model.layers if type(layer).__name__ != "Rescaling"]
    rows = [(type(layer).__name__, tuple(layer.output.shape[1:]), layer.count_params()) for layer in layers]
    assert rows[: len(SEED_TABLE)] == SEED_TABLE


def test_unknown_model_lists_the_valid_names() -> None:
    with pytest.raises(ConfigError, match="seed"):
        create_model("resnet9000")


def test_backbone_below_its_minimum_size_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="smallest it takes is 32 px"):
        create_model("efficientnet_b0", image_size=28, weights=None)


@pytest.mark.parametrize("name", list_models())
def test_every_model_builds_at_its_declared_smallest_size(name: str) -> None:
    info = get_model_info(name)
    model = create_model(name, image_size=info.min_size, pretrained=False)
    assert model.output_shape == (None, 7)
    with pytest.raises(ConfigError, match=f"smallest it takes is {info.min_size} px"):
        create_model(name, image_size=info.min_size - 1, pretrained=False)


def test_failed_weights_download_names_the_cache_file(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(fname: str, origin: str, **kwargs: object) -> str:
        # what keras.utils.get_file raises when the URL cannot be reached
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(ConfigError, match=r"models/efficientnetb0_notop\.h5.*weights=None"):
        create_model("efficientnet_b0", weights="imagenet")


def test_pretrained_false_never_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> str:
        raise AssertionError("tried to download weights")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    assert create_model("mobilenet_v3_small", image_size=32, pretrained=False).output_shape == (None, 7)
    assert create_model("seed", pretrained=False).output_shape == (None, 7)


def test_resnet50_reads_rgb_as_its_bgr_preprocessing_expects(monkeypatch: pytest.MonkeyPatch) -> None:
    """ImageNet weights (random ones stand in): our RGB input == preprocess_input's BGR into the original."""
    built: list[list[np.ndarray]] = []

    def random_resnet50(**kwargs: object) -> keras.Model:
        base = keras.applications.ResNet50(**{**kwargs, "weights": None})
        built.append(base.get_weights())
        return base

    backbone = applications.BACKBONES["resnet50"]
    monkeypatch.setattr(applications, "_fetch_weights", lambda backbone: None)
    monkeypatch.setitem(
        applications.BACKBONES, "resnet50", dataclasses.replace(backbone, constructor=random_resnet50)
    )
    model = create_model("resnet50", image_size=SMALL, weights="imagenet")
    reference = keras.applications.ResNet50(
        include_top=False, weights=None, input_shape=(SMALL, SMALL, 3), pooling="avg"
    )
    reference.set_weights(built[0])
    images = np.random.default_rng(0).uniform(0, 255, (2, SMALL, SMALL, 3)).astype(np.float32)
    ours = model.get_layer("resnet50")(model.get_layer("imagenet_mean")(images))
    expected = reference(keras.applications.resnet50.preprocess_input(images.copy()))
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("size", "stages", "final_side"), [(28, 3, 3), (32, 3, 4), (64, 4, 4)])
def test_compact_cnn_pools_down_to_a_few_pixels_at_any_size(size: int, stages: int, final_side: int) -> None:
    model = create_model("compact_cnn", image_size=size)
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert len(pools) == stages
    assert pools[-1].output.shape[1:3] == (final_side, final_side)


def test_patch_cnn_runs_compact_cnns_stages_on_a_half_size_map() -> None:
    model = create_model("patch_cnn", image_size=64)
    stem = model.get_layer("stem_conv")
    assert stem.strides == (2, 2) and stem.output.shape[1:] == (32, 32, 32)
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert [pool.output.shape[1] for pool in pools] == [16, 8, 4]
    convs = [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs == [32, 32, 32, 64, 64, 128, 128]  # the stem, then compact_cnn's 28 px stages


def test_width_scales_compact_cnn_channels() -> None:
    convs = {
        width: [layer.filters for layer in create_model("compact_cnn", width=width).layers
                if isinstance(layer, keras.layers.Conv2D)]
        for width in (1.0, 1.5)
    }  # fmt: skip
    assert convs[1.0] == [32, 32, 64, 64, 128, 128]
    assert convs[1.5] == [48, 48, 96, 96, 192, 192]


def test_width_for_a_model_without_one_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'seed' has no width option.*compact_cnn"):
        create_model("seed", width=2.0)
    assert create_model("seed", width=1.0).name  # 1.0 is every model's own width
