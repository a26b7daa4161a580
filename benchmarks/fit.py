"""Which way of squaring non-square photos trains better: squash (as hmnist did), centre-crop, or pad.

Trains the same model on the same lesion-grouped split for each `--fit`, loading the JPEGs at
`--image-size`, and prints validation and test balanced accuracy per fit and seed.
Usage: python benchmarks/fit.py [HAM10000_FOLDER] --model seed --image-size 28 --epochs 8 --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ham10000"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--model", default="seed")
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--fits", nargs="+", default=["squash", "crop", "pad"])
    args = parser.parse_args()

    from skinpamper.data.load import load_dataset
    from skinpamper.data.splits import split_dataset
    from skinpamper.training.config import TrainConfig
    from skinpamper.training.train import train

    print(f"{args.model} at {args.image_size} px from JPEGs, {args.epochs} epochs, lesion-grouped split")
    print("| fit | seed | val balanced acc | test balanced acc | test acc | minutes |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for fit in args.fits:
        dataset = load_dataset(args.path, size=args.image_size, fmt="jpeg", fit=fit)
        for seed in args.seeds:
            config = TrainConfig(model=args.model, image_size=args.image_size, fit=fit, epochs=args.epochs)
            config = config.replace(seed=seed, patience=0)
            split = split_dataset(dataset, config.val_fraction, config.test_fraction, seed)
            start = time.perf_counter()
            run = train(dataset, split, config, Path(tempfile.mkdtemp()) / "run")
            minutes = (time.perf_counter() - start) / 60
            metrics = json.loads((run / "metrics.json").read_text())
            val, test = metrics["val"], metrics["test"]
            print(
                f"| {fit} | {seed} | {val['balanced_accuracy']:.3f} | {test['balanced_accuracy']:.3f} "
                f"| {test['accuracy']:.3f} | {minutes:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
