"""How finished runs hold up when the camera's colour response changes: a stand-in for another clinic.

Another source's camera and lighting scale each colour channel by its own gain. This multiplies each
test image's channels by random gains drawn from [1 - s, 1 + s] (one draw per image and channel, the
same draws for every run) and prints test balanced accuracy per strength s, so a model that leans on
the colour cast of HAM10000's cameras shows it. The runs must have been trained on the data given.
Usage: python benchmarks/colour_shift.py RUN... [--data HAM10000_FOLDER] [--strengths 0 0.1 0.2 0.3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ham10000"


def channel_gains(n: int, strength: float, seed: int = 0) -> np.ndarray:
    """(n, 1, 1, 3) per-image, per-channel gains in [1 - strength, 1 + strength]."""
    return np.random.default_rng(seed).uniform(1 - strength, 1 + strength, (n, 1, 1, 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3])
    args = parser.parse_args()

    from skinpamper.data.load import load_dataset
    from skinpamper.training.run import Run
    from skinpamper.training.train import predict_probs

    print("| run | " + " | ".join(f"gains ±{s:g}" for s in args.strengths) + " |")
    print("| --- |" + " ---: |" * len(args.strengths))
    for path in args.runs:
        run = Run.open(path)
        config = run.config()
        dataset = load_dataset(args.data, size=config.image_size, fit=config.fit)
        test = run.split(dataset).test
        images, labels = dataset.images[test].astype(np.float32), dataset.labels[test]
        model = run.load_model()
        cells = []
        for strength in args.strengths:
            shifted = np.clip(images * channel_gains(len(test), strength), 0, 255).astype(np.uint8)
            predicted = predict_probs(model, shifted).argmax(axis=1)
            cells.append(f"{balanced_accuracy_score(labels, predicted):.3f}")
        print(f"| {path.name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
