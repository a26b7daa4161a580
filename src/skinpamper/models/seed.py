"""The original notebook's Sequential CNN, layer for layer (see DEVELOPERS.md).

Only the layers up to the last pooling layer were recorded. The head is not: we use
Flatten -> Dense(256, relu) -> BatchNormalization -> Dropout(0.5) -> Dense(softmax), the common
pattern in HAM10000 Kaggle notebooks of that era. The table gives an activation only for the first
convolution, so the second and third are linear, as recorded. A Rescaling(1/255) layer in front
replaces the notebook's division of the pixel arrays by 255 so the model carries its own scaling.
"""

from __future__ import annotations

import keras
from keras import layers

from skinpamper.models.registry import register_model


@register_model(
    "seed", default_size=28, min_size=15, description="the original notebook CNN (2.2M conv params)"
)
def build_seed(image_size: int = 28, num_classes: int = 7, dropout: float = 0.25) -> keras.Model:
    """The original CNN; `dropout` is the rate of the Dropout layer after the second block."""
    return keras.Sequential(
        [
            keras.Input((image_size, image_size, 3)),
            layers.Rescaling(1.0 / 255),
            layers.Conv2D(64, 2, activation="relu"),
            layers.MaxPooling2D(2),
            layers.BatchNormalization(),
            layers.Conv2D(512, 2),
            layers.MaxPooling2D(2),
            layers.BatchNormalization(),
            layers.Dropout(dropout),
            layers.Conv2D(1024, 2),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(256, activation="relu"),
            layers.BatchNormalization(),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax", dtype="float32"),
        ],
        name="seed",
    )
