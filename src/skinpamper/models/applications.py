"""ImageNet backbones from keras.applications, for 128-224 px inputs, with a fresh 7-class head.

Each model takes 0..255 RGB like every other model here, with its backbone's own preprocessing
inside it: EfficientNet and MobileNetV3 scale their input themselves; ResNet50 was trained on
caffe-style BGR images minus the ImageNet mean, so a fixed-constant Normalization subtracts the mean
and, with ImageNet weights, the first convolution's input channels are reversed once at build time so
that it reads RGB directly (no channel-flip layer at run time, nothing custom to deserialise).

`weights="imagenet"` needs the backbone's weights file in the Keras cache. We fetch it ourselves
before building, so that a failed download (no network) becomes a ConfigError saying which file to
place where, instead of Keras's plain Exception; `weights=None` trains from scratch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
from keras import layers

from skinpamper.errors import ConfigError
from skinpamper.models.registry import WeightsSource, register_model

MIN_SIZE = 32  # the smallest input keras.applications accepts for these backbones
IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)  # keras.applications.resnet50.preprocess_input's means


@dataclass(frozen=True)
class Backbone:
    """A keras.applications constructor and where Keras gets its no-top ImageNet weights."""

    constructor: Callable[..., keras.Model]
    weights_file: str
    weights_url: str
    weights_md5: str


BACKBONES = {
    "efficientnet_b0": Backbone(
        keras.applications.EfficientNetB0,
        "efficientnetb0_notop.h5",
        "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
        "50bc09e76180e00e4465e1a485ddc09d",
    ),
    "resnet50": Backbone(
        keras.applications.ResNet50,
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "4d473c1dd8becc155b73f8504c6f6626",
    ),
    "mobilenet_v3_small": Backbone(
        keras.applications.MobileNetV3Small,
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        "d3e8ec802a04aa4fc771ee12a9a9b836",
    ),
}


def weights_cache_path(backbone: Backbone) -> Path:
    """Where Keras looks for the weights file (its cache folder, `models` subfolder); `skinpamper env`
    reports whether each backbone's file is there."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models" / backbone.weights_file


def _fetch_weights(backbone: Backbone) -> None:
    """Put the ImageNet weights in the Keras cache (a no-op when already there) or say how to."""
    try:
        keras.utils.get_file(
            backbone.weights_file, backbone.weights_url, file_hash=backbone.weights_md5, cache_subdir="models"
        )
    except Exception as exc:  # get_file re-raises HTTP and URL errors as a plain Exception
        raise ConfigError(
            f"could not download the ImageNet weights {backbone.weights_file} ({exc}); download "
            f"{backbone.weights_url} by hand and place it at {weights_cache_path(backbone)}, "
            "or build the model with weights=None to train from scratch"
        ) from exc


def _imagenet(name: str) -> WeightsSource:
    return WeightsSource(
        "ImageNet, downloaded by Keras at run time into its cache",
        "Apache-2.0 (Keras)",
        False,
        lambda: _fetch_weights(BACKBONES[name]),
    )


def build_application(
    name: str, image_size: int, num_classes: int, weights: str | None, dropout: float
) -> keras.Model:
    """Backbone `name` (global-average pooled) -> Dropout -> Dense softmax."""
    if weights not in ("imagenet", None):
        raise ConfigError(f"{name}: weights must be 'imagenet' or None, got {weights!r}")
    backbone = BACKBONES[name]
    if weights:
        _fetch_weights(backbone)
    inputs = keras.Input((image_size, image_size, 3))
    base = backbone.constructor(
        include_top=False, weights=weights, input_shape=(image_size, image_size, 3), pooling="avg"
    )
    x = inputs
    if name == "resnet50":
        x = layers.Normalization(mean=IMAGENET_MEAN_RGB, variance=(1.0, 1.0, 1.0), name="imagenet_mean")(x)
        if weights:
            conv = base.get_layer("conv1_conv")
            conv.kernel.assign(keras.ops.flip(conv.kernel, axis=2))  # BGR-trained -> reads RGB
    x = base(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


@register_model(
    "efficientnet_b0",
    default_size=224,
    min_size=MIN_SIZE,
    description="EfficientNetB0, ImageNet weights (downloaded at run time)",
    preprocessing="the keras.applications backbone's own (inside it)",
    weights=_imagenet("efficientnet_b0"),
)
def build_efficientnet_b0(
    image_size: int = 224, num_classes: int = 7, weights: str | None = "imagenet", dropout: float = 0.2
) -> keras.Model:
    """EfficientNetB0: the accuracy/cost sweet spot of the ImageNet backbones."""
    return build_application("efficientnet_b0", image_size, num_classes, weights, dropout)


@register_model(
    "resnet50",
    default_size=224,
    min_size=MIN_SIZE,
    description="ResNet50, ImageNet weights (downloaded at run time)",
    preprocessing="(x - ImageNet mean), BGR-trained first layer flipped to RGB",
    weights=_imagenet("resnet50"),
)
def build_resnet50(
    image_size: int = 224, num_classes: int = 7, weights: str | None = "imagenet", dropout: float = 0.2
) -> keras.Model:
    """ResNet50: the common transfer-learning reference point."""
    return build_application("resnet50", image_size, num_classes, weights, dropout)


@register_model(
    "mobilenet_v3_small",
    default_size=224,
    min_size=MIN_SIZE,
    description="MobileNetV3Small, ImageNet weights (downloaded at run time)",
    preprocessing="the keras.applications backbone's own (inside it)",
    weights=_imagenet("mobilenet_v3_small"),
)
def build_mobilenet_v3_small(
    image_size: int = 224, num_classes: int = 7, weights: str | None = "imagenet", dropout: float = 0.2
) -> keras.Model:
    """MobileNetV3Small: the cheapest ImageNet backbone, for CPU training and serving."""
    return build_application("mobilenet_v3_small", image_size, num_classes, weights, dropout)
