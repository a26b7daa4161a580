"""Held-out-lesion accuracy of recipes on real HAM10000, over several seeds: mean and spread.

Each recipe trains on the lesion-grouped split of its seed (70/10/20) and is scored on the test part:
accuracy, balanced accuracy (mean recall), macro AUC, per-class recall, and training minutes.
Usage: python benchmarks/accuracy.py [HAM10000_FOLDER] --recipes seed-original best-28 best-64 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from skinpamper.classes import CODES

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ham10000"
# Settings per recipe; everything else is TrainConfig's default.
RECIPES: dict[str, dict] = {
    # The notebook: its CNN, 25 epochs of Adam, augmentation against imbalance, no loss weighting.
    "seed-original": {"model": "seed", "image_size": 28, "epochs": 25, "imbalance": "none", "patience": 0},
    "seed-weighted": {"model": "seed", "image_size": 28, "epochs": 25, "imbalance": "class_weight"},
    "seed-balanced": {"model": "seed", "image_size": 28, "epochs": 25, "imbalance": "balanced_sampling"},
    "seed-oversample": {"model": "seed", "image_size": 28, "epochs": 25, "imbalance": "oversample"},
    # No resampling (rotation/zoom/shift), colour jitter kept.
    "seed-weighted-noaffine": {
        "model": "seed",
        "image_size": 28,
        "epochs": 25,
        "imbalance": "class_weight",
        "augment": {"rotation": 0.0, "zoom": 0.0, "translate": 0.0},
    },
    # Only the exact symmetries of the square: no resampling blur, no colour change.
    "seed-weighted-sym": {
        "model": "seed",
        "image_size": 28,
        "epochs": 25,
        "imbalance": "class_weight",
        "augment": {
            "rotation": 0.0,
            "zoom": 0.0,
            "translate": 0.0,
            "brightness": 0.0,
            "contrast": 0.0,
            "saturation": 0.0,
        },
    },
    "best-28": {"model": "resnet_small", "image_size": 28, "epochs": 30, "imbalance": "class_weight"},
    "best-64": {"model": "resnet_small", "image_size": 64, "epochs": 30, "imbalance": "class_weight"},
}


def run_recipe(path: Path, name: str, seed: int) -> dict:
    from skinpamper.config import TrainConfig
    from skinpamper.data.load import load_dataset
    from skinpamper.data.splits import split_dataset
    from skinpamper.train import train

    config = TrainConfig().replace(**RECIPES[name], seed=seed)
    dataset = load_dataset(path, size=config.image_size, fit=config.fit)
    split = split_dataset(dataset, config.val_fraction, config.test_fraction, seed)
    start = time.perf_counter()
    run = train(dataset, split, config, Path(tempfile.mkdtemp()) / "run")
    test = json.loads((run / "metrics.json").read_text())["test"]
    return {**test, "minutes": (time.perf_counter() - start) / 60}


def spread(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument(
        "--recipes", nargs="+", default=["seed-original", "best-28", "best-64"], choices=RECIPES
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    header = "| recipe | accuracy | balanced acc | macro AUC | " + " | ".join(CODES) + " | minutes |"
    rows = []
    for name in args.recipes:
        results = [run_recipe(args.path, name, seed) for seed in args.seeds]
        for seed, r in zip(args.seeds, results, strict=True):
            print(
                f"{name} seed {seed}: bal acc {r['balanced_accuracy']:.3f} acc {r['accuracy']:.3f} "
                f"auc {r['macro_auc']:.3f} in {r['minutes']:.1f} min",
                flush=True,
            )
        cells = [spread([r[key] for r in results]) for key in ("accuracy", "balanced_accuracy", "macro_auc")]
        cells += [spread([r["per_class_recall"][c] for r in results]) for c in CODES]
        cells.append(spread([r["minutes"] for r in results]))
        rows.append(f"| {name} ({len(results)} seeds) | " + " | ".join(cells) + " |")
    print(header)
    print("|" + " --- |" * (len(CODES) + 5))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
