"""A compact residual CNN for small inputs (28-64 px), cheaper per image than `seed`.

Three stages of basic residual blocks (two 3x3 convolutions, BatchNorm, ReLU; a 1x1 projection
shortcut where the shape changes) followed by global average pooling, so any input size works and
the head has ~1k parameters instead of the seed's 1M-parameter Flatten -> Dense. The last BatchNorm
of each block starts at zero ("zero-gamma"), so every block starts as the identity, which makes
early training of residual nets steadier. There is no L2 penalty: weight decay is a training option
(`weight_decay`, decoupled), so it is tuned in one place for every model.

Cheaper than seed, but not yet shown to be more accurate: in a short same-recipe comparison at 28 px
(25 epochs, class weights, flips and 90-degree turns) its validation balanced accuracy was ~0.05 lower.
"""

from __future__ import annotations

import keras
from keras import layers

from skinpamper.models.registry import register_model

WIDTHS = (32, 64, 128)  # channels per stage; stages 2 and 3 halve the resolution
BLOCKS = (1, 2, 2)  # residual blocks per stage: one at full resolution keeps the cost below seed's


def _conv(filters: int, kernel: int, strides: int = 1, name: str | None = None) -> layers.Conv2D:
    """A bias-free conv: the BatchNorm after it supplies the offset."""
    return layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=name,
    )


def _residual_block(x: keras.KerasTensor, filters: int, strides: int, name: str) -> keras.KerasTensor:
    """conv-BN-ReLU-conv-BN plus the shortcut, then ReLU (the original ResNet basic block)."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv(filters, 1, strides, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = _conv(filters, 3, strides, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = _conv(filters, 3, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(gamma_initializer="zeros", name=f"{name}_bn2")(y)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_out")(y)


@register_model(
    "resnet_small",
    default_size=28,
    min_size=4,
    description="residual CNN for 28-32 px: 32/64/128 channels, 5 blocks",
)
def build_resnet_small(image_size: int = 28, num_classes: int = 7, dropout: float = 0.3) -> keras.Model:
    """Full-resolution stem and first stage: at 28-32 px every pixel counts."""
    inputs = keras.Input((image_size, image_size, 3))
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    x = _conv(WIDTHS[0], 3, name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for stage, (filters, blocks) in enumerate(zip(WIDTHS, BLOCKS, strict=True), start=1):
        for block in range(blocks):
            strides = 2 if stage > 1 and block == 0 else 1
            x = _residual_block(x, filters, strides, name=f"stage{stage}_block{block + 1}")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name="resnet_small")
