"""`count_flops(model)`: forward FLOPs per image, from the layer shapes alone (no profiler, no data).

Convention (as in most papers): a multiply-add is 2 FLOPs, and only the layers that multiply by
weights are counted: convolutions (any rank, grouped, depthwise, separable) and Dense. Bias adds,
BatchNorm (folded into the preceding convolution at inference), activations, element-wise adds and
multiplies, rescaling and pooling are left out: together they are a few percent of a CNN's cost and
are memory-bound rather than compute-bound. Nested models (a keras.applications backbone inside our
model) are walked recursively. A weighted layer of any other kind raises, rather than being silently
counted as free.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import keras
from keras import layers

from skinpamper.models.registry import create_model

# Layers with weights that the convention above deliberately does not count.
UNCOUNTED = (
    layers.BatchNormalization,
    layers.LayerNormalization,
    layers.GroupNormalization,
    layers.Normalization,
)
CONVS = (layers.Conv1D, layers.Conv2D, layers.Conv3D, layers.DepthwiseConv1D, layers.DepthwiseConv2D)


def _spatial_size(layer: layers.Layer) -> int:
    """Positions per image at which a conv layer's kernel is applied (its output's spatial size)."""
    shape = layer.output.shape
    dims = shape[2:] if getattr(layer, "data_format", "channels_last") == "channels_first" else shape[1:-1]
    return math.prod(dims)


def _layer_macs(layer: layers.Layer) -> int:
    """Multiply-adds per image for one (non-model) layer."""
    if isinstance(layer, layers.SeparableConv1D | layers.SeparableConv2D):
        kernels = math.prod(layer.depthwise_kernel.shape) + math.prod(layer.pointwise_kernel.shape)
        return _spatial_size(layer) * kernels
    if isinstance(layer, CONVS):
        # Conv kernels are (k..., in/groups, out), depthwise ones (k..., in, multiplier): either way
        # each output position uses every kernel entry exactly once.
        return _spatial_size(layer) * math.prod(layer.kernel.shape)
    if isinstance(layer, layers.Dense):
        return math.prod(layer.output.shape[1:-1]) * math.prod(layer.kernel.shape)
    if layer.weights and not isinstance(layer, UNCOUNTED):
        raise ValueError(f"count_flops does not know how to count {type(layer).__name__} ({layer.name})")
    return 0


def count_flops(model: keras.Model) -> int:
    """Forward FLOPs for one image (2 per multiply-add), summed over `model` and the models inside it."""
    total = 0
    for layer in model.layers:
        total += count_flops(layer) if isinstance(layer, keras.Model) else 2 * _layer_macs(layer)
    return total


class ModelCost(NamedTuple):
    """What a registered model costs at one input size."""

    params: int
    flops: int  # forward, per image


def measure_model(name: str, image_size: int | None = None) -> ModelCost:
    """Parameters and forward FLOPs of registered model `name` (at its default size unless given).

    Pretrained weights change neither, so none are loaded: listing the models must not download.
    """
    model = create_model(name, image_size=image_size, pretrained=False)
    return ModelCost(model.count_params(), count_flops(model))
