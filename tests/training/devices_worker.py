"""Run in a fresh process (PYTHONPATH=tests) by test_devices.py: TensorFlow fixes its logical devices once
per process.

    python devices_worker.py train|killed OUT DEVICES LEARNING_RATE IMBALANCE
        trains `tiny_dense` (below) on tests' tiny_dataset for 2 epochs into OUT; `killed` kills itself
        (SIGKILL, as kill -9) as soon as the first epoch is saved
    python devices_worker.py resume OUT
        resumes the run at OUT
    python devices_worker.py sgd_step DEVICES
        prints the weight change of one plain SGD step (learning rate 1) on one fixed batch, as JSON
"""

from __future__ import annotations

import json
import os
import signal
import sys

import keras
import numpy as np

from skinpamper.data.dataset import Dataset
from skinpamper.data.splits import split_dataset
from skinpamper.models.registry import register_model
from skinpamper.training.config import TrainConfig
from skinpamper.training.devices import device_scope, split_host_cpu
from skinpamper.training.train import resume, train
from synthetic import tiny_dataset


@register_model("tiny_dense", default_size=8, min_size=1, description="test only: no BatchNorm, no dropout")
def build_tiny_dense(image_size: int = 8, **_: object) -> keras.Model:
    """A model whose step on 2 replicas is, in exact arithmetic, the step on one device: BatchNorm
    (statistics per replica) and dropout (masks per replica) would make them differ by design."""
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(7, activation="softmax", dtype="float32")(x)  # as registered models
    return keras.Model(inputs, outputs)


def tiny() -> Dataset:
    return tiny_dataset(per_class=12, side=8)


class KillAfterFirstEpoch(keras.callbacks.Callback):
    """Runs after the run's own recorder, so epoch 1 is on disk when the process dies."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


def train_tiny(out: str, devices: int, learning_rate: float, imbalance: str, killed: bool) -> None:
    dataset = tiny()
    split = split_dataset(dataset, 0.2, 0.2, seed=0)
    config = TrainConfig(
        model="tiny_dense",
        image_size=8,
        epochs=2,
        batch_size=8,
        devices=devices,
        learning_rate=learning_rate,
        imbalance=imbalance,
        seed=0,
        precision="float32",  # "auto" may pick bf16, whose rounding would swamp the tolerance compared
    )
    train(dataset, split, config, out, callbacks=[KillAfterFirstEpoch()] if killed else [])


def sgd_step(devices: int) -> None:
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(1).normal(size=(8, 8, 8, 3)).astype("float32") * 100
    y = np.arange(8) % 7
    with device_scope(devices):
        model = build_tiny_dense()
        before = [w.copy() for w in model.get_weights()]
        model.compile(optimizer=keras.optimizers.SGD(1.0), loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    change = [float(np.abs(a - b).sum()) for a, b in zip(model.get_weights(), before, strict=True)]
    print(json.dumps(change))


if __name__ == "__main__":
    split_host_cpu()
    if sys.argv[1] in ("train", "killed"):
        train_tiny(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[1] == "killed")
    elif sys.argv[1] == "resume":
        resume(sys.argv[2], tiny())
    else:
        sgd_step(int(sys.argv[2]))
