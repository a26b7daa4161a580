"""Training throughput of the seed CNN: Skin Pamper's input pipeline vs the notebook way, same run.

All three train the same model on the same in-memory uint8 arrays with flips, rotations, zoom, shifts
and colour jitter, batch 64, Adam, class weights, and report images/s over the last of `--epochs`
epochs (the first includes tracing):
  skinpamper      make_train_dataset(): vectorised stateless augmentation in tf.data, prefetched,
                  in the default precision (float32)
  skinpamper-bf16 the same pipeline with mixed bfloat16 (`precision = "bfloat16"`)
  keras-layers    model.fit(x, y) with Keras preprocessing layers in front of the model
  imagedatagen    model.fit(ImageDataGenerator.flow(x, y)), what the 2019 notebooks did
Usage: python benchmarks/train_speed.py [--images 8192] [--epochs 2] [--image-size 28] [--model seed]
       [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from keras import layers

from skinpamper.models import create_model
from skinpamper.training.config import TrainConfig
from skinpamper.training.pipeline import class_weights, make_train_dataset
from skinpamper.training.precision import precision_scope, resolve_precision


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.times.append(time.perf_counter() - self.start)


def compiled(model: keras.Model) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def run_skinpamper(
    x: np.ndarray, y: np.ndarray, args: argparse.Namespace, precision: str = "float32"
) -> float:
    # The augmentation the other two ways apply (Skin Pamper's default is the square symmetries only).
    augment = {"rotation": 15.0, "zoom": 0.1, "translate": 0.05, "brightness": 0.1, "contrast": 0.1}
    config = TrainConfig(model=args.model, image_size=args.image_size, batch_size=64).replace(augment=augment)
    data = make_train_dataset(x, y, config)
    with precision_scope(resolve_precision(precision)):
        model = compiled(create_model(args.model, image_size=args.image_size))
    timer = EpochTimer()
    model.fit(
        data.dataset, steps_per_epoch=data.steps_per_epoch, epochs=args.epochs, verbose=0, callbacks=[timer]
    )
    return data.steps_per_epoch * 64 / timer.times[-1]


def run_keras_layers(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> float:
    augment = keras.Sequential(
        [
            layers.RandomFlip("horizontal_and_vertical"),
            layers.RandomRotation(0.5),  # 90-degree turns and the small rotation in one
            layers.RandomZoom(0.1),
            layers.RandomTranslation(0.05, 0.05),
            layers.RandomBrightness(0.1, value_range=(0, 255)),
            layers.RandomContrast(0.1),
        ]
    )
    inputs = keras.Input((args.image_size, args.image_size, 3))
    model = compiled(
        keras.Model(inputs, create_model(args.model, image_size=args.image_size)(augment(inputs)))
    )
    weights = dict(enumerate(class_weights(y).tolist()))
    timer = EpochTimer()
    model.fit(
        x.astype("float32"),
        y,
        batch_size=64,
        epochs=args.epochs,
        class_weight=weights,
        verbose=0,
        callbacks=[timer],
    )
    return len(x) / timer.times[-1]


def run_imagedatagen(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> float:
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    generator = ImageDataGenerator(
        rotation_range=15,
        zoom_range=0.1,
        width_shift_range=0.05,
        height_shift_range=0.05,
        horizontal_flip=True,
        vertical_flip=True,
        brightness_range=(0.9, 1.1),
    )
    model = compiled(create_model(args.model, image_size=args.image_size))
    weights = dict(enumerate(class_weights(y).tolist()))
    timer = EpochTimer()
    flow = generator.flow(x.astype("float32"), y, batch_size=64, seed=0)
    model.fit(flow, epochs=args.epochs, class_weight=weights, verbose=0, callbacks=[timer])
    return len(x) / timer.times[-1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--model", default="seed")
    parser.add_argument(
        "--ways", nargs="+", default=["skinpamper", "skinpamper-bf16", "keras-layers", "imagedatagen"]
    )
    parser.add_argument("--repeats", type=int, default=3, help="Rounds over all ways; medians are reported.")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, args.image_size, args.image_size, 3), dtype=np.uint8)
    y = rng.choice(7, args.images, p=[0.03, 0.05, 0.11, 0.01, 0.11, 0.67, 0.02])
    runners = {
        "skinpamper": run_skinpamper,
        "skinpamper-bf16": lambda x, y, args: run_skinpamper(x, y, args, "bfloat16"),
        "keras-layers": run_keras_layers,
        "imagedatagen": run_imagedatagen,
    }
    print(f"precision 'auto' would pick {resolve_precision('auto')} on this machine", flush=True)
    # Ways are interleaved round by round so that a slow spell of the machine hits them all alike.
    samples: dict[str, list[float]] = {way: [] for way in args.ways}
    for round_ in range(args.repeats):
        for way in args.ways:
            keras.utils.set_random_seed(0)
            samples[way].append(runners[way](x, y, args))
            print(f"round {round_ + 1}: {way:16} {samples[way][-1]:7.0f} images/s", flush=True)
    results = {way: float(np.median(values)) for way, values in samples.items()}
    for way, value in results.items():
        print(f"median {way:16} {value:7.0f} images/s")
    if "skinpamper" in results:
        for way, value in results.items():
            if way != "skinpamper":
                print(f"skinpamper / {way}: {results['skinpamper'] / value:.2f}x")


if __name__ == "__main__":
    main()
