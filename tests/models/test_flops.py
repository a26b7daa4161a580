"""count_flops matches hand counts: the seed CNN, a Dense-only model, a model nested in another."""

from __future__ import annotations

import keras
import pytest
from keras import layers

from skinpamper.models import create_model
from skinpamper.models.flops import count_flops, measure_model


def test_seed_flops_match_the_hand_count() -> None:
    # 2 FLOPs per multiply-add: output positions x output channels x kernel entries per output
    conv1 = 27 * 27 * 64 * (2 * 2 * 3)
    conv2 = 12 * 12 * 512 * (2 * 2 * 64)
    conv3 = 5 * 5 * 1024 * (2 * 2 * 512)
    dense = 2 * 2 * 1024 * 256 + 256 * 7
    assert count_flops(create_model("seed", image_size=28)) == 2 * (conv1 + conv2 + conv3 + dense)


def test_dense_only_model() -> None:
    model = keras.Sequential([keras.Input((10,)), layers.Dense(5), layers.Dense(3, use_bias=False)])
    assert count_flops(model) == 2 * (10 * 5 + 5 * 3)


def test_nested_model_is_counted() -> None:
    inner = keras.Sequential(
        [keras.Input((8, 8, 3)), layers.Conv2D(4, 3, strides=2, padding="same"), layers.DepthwiseConv2D(3)],
        name="inner",
    )
    inputs = keras.Input((8, 8, 3))
    outputs = layers.Dense(2)(layers.Flatten()(inner(inputs)))
    model = keras.Model(inputs, outputs)
    conv = 4 * 4 * 4 * (3 * 3 * 3)  # 8x8 at stride 2 -> 4x4, 4 channels
    depthwise = 2 * 2 * 4 * (3 * 3)  # valid 3x3 on 4x4 -> 2x2, one window per channel
    assert count_flops(model) == 2 * (conv + depthwise + 2 * 2 * 4 * 2)


def test_unknown_weighted_layer_is_refused() -> None:
    model = keras.Sequential([keras.Input((4, 4, 2)), layers.Conv2DTranspose(3, 2)])
    with pytest.raises(ValueError, match="Conv2DTranspose"):
        count_flops(model)


def test_measure_model_builds_backbones_without_downloading(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_download(*args: object, **kwargs: object) -> str:
        raise AssertionError("measure_model tried to download weights")

    monkeypatch.setattr(keras.utils, "get_file", no_download)
    cost = measure_model("mobilenet_v3_small", image_size=32)
    assert cost.params > 0 and cost.flops > 0
