"""Training throughput at 128 px: Skin Pamper's EfficientNet-Lite0 fine-tuning against plain `model.fit`
on `keras.applications.EfficientNetB0`, what a user would otherwise run, in the same process.

Ways (random images, batch 64, Adam, images/s over the last of `--epochs` epochs; the first traces):
  keras-b0         keras.applications.EfficientNetB0(weights=None) + head, model.fit(x, y), float32
  lite0-full       efficientnet_lite0, every layer trained (batch norm too), float32
  lite0-recipe     efficientnet_lite0 as `skinpamper train` fine-tunes it: batch norm in inference mode,
                   the first `frozen_stages` stages frozen, its input pipeline, `--precision auto`
Ways run interleaved, round by round. The FLOP share counts 3x the forward FLOPs per image (forward,
and backward for activations and weights) against `--peak-gflops` (330: 2 AVX-512 cores, fp32).
Usage: python benchmarks/finetune_speed.py [--images 1024] [--epochs 2] [--repeats 2] [--frozen-stages 3]
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from keras import layers

from skinpamper.models import create_model
from skinpamper.models.flops import count_flops
from skinpamper.training.config import resolve_config
from skinpamper.training.finetune import freeze_for_finetuning
from skinpamper.training.pipeline import make_train_dataset
from skinpamper.training.precision import precision_scope
from skinpamper.training.train import make_optimizer, training_precision
from train_speed import EpochTimer

SIZE = 128


def keras_b0() -> keras.Model:
    inputs = keras.Input((SIZE, SIZE, 3))
    base = keras.applications.EfficientNetB0(
        include_top=False, weights=None, input_shape=(SIZE, SIZE, 3), pooling="avg"
    )
    outputs = layers.Dense(7, activation="softmax")(base(inputs))
    return keras.Model(inputs, outputs)


def timed_fit(model: keras.Model, data: object, steps: int, epochs: int, optimizer: object = None) -> float:
    model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    timer = EpochTimer()
    model.fit(data, epochs=epochs, steps_per_epoch=steps, callbacks=[timer], verbose=0)
    return steps * 64 / timer.times[-1]


def run(way: str, x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> float:
    steps = len(x) // 64
    if way == "keras-b0":
        data = (
            __import__("tensorflow").data.Dataset.from_tensor_slices((x.astype(np.float32), y))
            .shuffle(len(x)).repeat().batch(64)
        )  # fmt: skip
        return timed_fit(keras_b0(), data, steps, args.epochs)
    config = resolve_config(model="efficientnet_lite0", epochs=args.epochs, frozen_stages=args.frozen_stages)
    if way == "lite0-full":
        data = make_train_dataset(x, y, config.replace(precision="float32")).dataset
        return timed_fit(create_model("efficientnet_lite0", SIZE), data, steps, args.epochs)
    with precision_scope(training_precision(config)):
        model = create_model("efficientnet_lite0", SIZE)
    freeze_for_finetuning(model, config)
    data = make_train_dataset(x, y, config).dataset
    return timed_fit(model, data, steps, args.epochs, make_optimizer(config, steps))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--frozen-stages", type=int, default=3)
    parser.add_argument("--peak-gflops", type=float, default=330.0)
    parser.add_argument("--ways", nargs="+", default=["keras-b0", "lite0-full", "lite0-recipe"])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, SIZE, SIZE, 3), dtype=np.uint8)
    y = rng.integers(0, 7, args.images)
    flops = {
        "keras-b0": count_flops(keras_b0()),
        "lite0-full": count_flops(create_model("efficientnet_lite0", SIZE, pretrained=False)),
    }
    flops["lite0-recipe"] = flops["lite0-full"]
    speeds: dict[str, list[float]] = {way: [] for way in args.ways}
    for round_ in range(1, args.repeats + 1):
        for way in args.ways:
            speeds[way].append(run(way, x, y, args))
            print(f"round {round_} {way:13} {speeds[way][-1]:7.1f} images/s", flush=True)
    base = statistics.median(speeds["keras-b0"]) if "keras-b0" in speeds else None
    print(f"\n{'way':13} {'images/s':>9} {'spread':>13} {'x keras-b0':>10} {'fp32 share':>10}")
    for way, values in speeds.items():
        median = statistics.median(values)
        share = median * 3 * flops[way] / (args.peak_gflops * 1e9)
        ratio = f"{median / base:.2f}x" if base else "-"
        spread = f"{min(values):.1f}-{max(values):.1f}"
        print(f"{way:13} {median:9.1f} {spread:>13} {ratio:>10} {share:10.0%}")


if __name__ == "__main__":
    main()
