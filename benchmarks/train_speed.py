"""Training throughput of the seed CNN: Skin Pamper's input pipeline vs the notebook way, same run.

All ways train the same model on the same in-memory uint8 arrays with flips, rotations, zoom, shifts
and colour jitter, batch 64, Adam, class weights, and report images/s over the last of `--epochs`
epochs (the first includes tracing):
  skinpamper      make_train_dataset(): vectorised stateless augmentation in tf.data, prefetched,
                  in float32
  skinpamper-auto the same pipeline with `--precision auto` (mixed bfloat16 on CPUs with native bf16,
                  float32 elsewhere), XLA as `--xla auto` picks it
  keras-layers    model.fit(x, y) with Keras preprocessing layers in front of the model
  imagedatagen    model.fit(ImageDataGenerator.flow(x, y)), what the 2019 notebooks did
Ways run interleaved, round by round; each round's speed-up over imagedatagen is printed, then the
medians, the spread (min-max) and each median's share of the fp32 ceiling (`--peak-gflops`, the
machine's float32 peak; 330 for the 2 AVX-512 cores this was written on).
Usage: python benchmarks/train_speed.py [--images 8192] [--epochs 2] [--image-size 28] [--model seed]
       [--repeats 3] [--peak-gflops 330]
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
from skinpamper.models.flops import count_flops
from skinpamper.training.config import TrainConfig
from skinpamper.training.pipeline import class_weights, make_train_dataset
from skinpamper.training.precision import precision_scope, resolve_jit_compile, resolve_precision


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.times.append(time.perf_counter() - self.start)


def compiled(model: keras.Model, jit_compile: bool | str = False) -> keras.Model:
    """Compiled as `skinpamper train` compiles (XLA off unless asked: the notebooks never used it)."""
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
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
        model = create_model(args.model, image_size=args.image_size)
    model = compiled(model, resolve_jit_compile("auto") if precision == "auto" else False)
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
        "--ways", nargs="+", default=["skinpamper", "skinpamper-auto", "keras-layers", "imagedatagen"]
    )
    parser.add_argument("--repeats", type=int, default=3, help="Rounds over all ways; medians are reported.")
    parser.add_argument("--peak-gflops", type=float, default=330.0, help="The machine's float32 peak.")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, args.image_size, args.image_size, 3), dtype=np.uint8)
    y = rng.choice(7, args.images, p=[0.03, 0.05, 0.11, 0.01, 0.11, 0.67, 0.02])
    runners = {
        "skinpamper": run_skinpamper,
        "skinpamper-auto": lambda x, y, args: run_skinpamper(x, y, args, "auto"),
        "keras-layers": run_keras_layers,
        "imagedatagen": run_imagedatagen,
    }
    auto = resolve_precision("auto")
    print(f"precision 'auto' picks {auto}, XLA {resolve_jit_compile('auto')} on this machine", flush=True)
    samples: dict[str, list[float]] = {way: [] for way in args.ways}
    for round_ in range(args.repeats):
        for way in args.ways:
            keras.utils.set_random_seed(0)
            samples[way].append(runners[way](x, y, args))
            print(f"round {round_ + 1}: {way:16} {samples[way][-1]:7.0f} images/s", flush=True)
        if "imagedatagen" in samples:
            base = samples["imagedatagen"][-1]
            ratios = ", ".join(f"{w} {v[-1] / base:.2f}x" for w, v in samples.items() if w.startswith("skin"))
            print(f"round {round_ + 1}: over imagedatagen: {ratios}", flush=True)
    # Training costs about 3x the forward pass (forward, gradients of activations and of weights).
    train_gflop = 3 * count_flops(create_model(args.model, image_size=args.image_size)) / 1e9
    ceiling = args.peak_gflops / train_gflop
    print(
        f"fp32 ceiling: {args.peak_gflops:.0f} GFLOP/s / {train_gflop:.3f} GFLOP per image "
        f"= {ceiling:.0f} images/s"
    )
    for way, values in samples.items():
        median = float(np.median(values))
        print(
            f"median {way:16} {median:7.0f} images/s (spread {min(values):.0f}-{max(values):.0f}), "
            f"{100 * median / ceiling:.0f}% of the fp32 ceiling"
        )
    if "imagedatagen" in samples:
        for way in (w for w in samples if w.startswith("skinpamper")):
            ratios = [a / b for a, b in zip(samples[way], samples["imagedatagen"], strict=True)]
            print(
                f"{way} / imagedatagen: median {np.median(ratios):.2f}x, every round at least "
                f"{min(ratios):.2f}x"
            )


if __name__ == "__main__":
    main()
