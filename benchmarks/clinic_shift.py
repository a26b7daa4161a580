"""Trust across clinics: does a run answer dermoscopy from another device, and still refuse what is not?

In distribution: the run's test split, decoded from the original JPEGs and put through each simulated
clinic shift of `skinpamper.scoring.shifts` (zoom-out, dark rim and vignetting, colour cast, JPEG
quality, blur, aspect ratio and size, and `other_clinic`: rim + yellow-white cast at 768 x 560), the
same draws for the same seed. Every image is scored through the run's own inference chain (no TTA),
as `predict --no-tta` and the service would. Per shift it prints the share answered (not refused),
unfamiliar and ok, balanced accuracy of all images and melanoma sensitivity of those answered ok.
Then, per non-dermoscopy set of benchmarks/ood_sets.py, the share refused and the AUROC of the
refusal score against the plain test split (for a run with a dermoscopy detector: how far the
detector's log-odds or the OOD distance is beyond its threshold, whichever is further; for an older
run: the OOD distance), beside the AUROC of the OOD distance alone.
Usage: python benchmarks/clinic_shift.py RUN... [--data HAM10000_FOLDER] [--seed 0]
Targets (issue 23): >= 95% of shifted dermoscopy answered; non-dermoscopy AUROC >= 0.99.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

import ood_sets
from ood import auroc

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ham10000"


def refusal_score(rules, scored) -> np.ndarray:
    """How far past refusal each image is (> 0: refused), on the log scale of each detector."""
    distance = np.log(np.maximum(scored.ood_scores, 1e-12))
    if not rules.separates_unfamiliar(scored.not_dermoscopy):
        return distance - np.log(rules.ood_threshold)
    beyond = distance - np.log(rules.far_ood_threshold)
    return np.maximum(scored.not_dermoscopy - rules.dermoscopy_threshold, beyond)


def shift_rows(chain, originals: list[np.ndarray], labels: np.ndarray, size: int, fit: str, seed: int):
    """One table row per shift: answered, unfamiliar and ok shares, balanced accuracy, mel sensitivity."""
    from skinpamper.imaging import fit_square
    from skinpamper.scoring.abstention import OK, OUT_OF_DISTRIBUTION, UNFAMILIAR, kept_balanced_accuracy
    from skinpamper.scoring.melanoma import mel_sensitivity
    from skinpamper.scoring.shifts import SHIFTS

    shifts = {"none": lambda image, rng: image, **SHIFTS}
    for name, shift in shifts.items():
        rng = np.random.default_rng(seed)
        images = np.stack([fit_square(Image.fromarray(shift(o, rng)), size, fit) for o in originals])
        scored = chain.score(images)
        statuses = np.asarray(scored.statuses)
        probs = scored.image_probabilities
        everything = np.ones(len(labels), dtype=bool)
        ok_mel = mel_sensitivity(labels, probs, statuses == OK)
        print(
            f"| {name} | {100 * np.mean(statuses != OUT_OF_DISTRIBUTION):.1f}% | "
            f"{100 * np.mean(statuses == UNFAMILIAR):.1f}% | {100 * np.mean(statuses == OK):.1f}% | "
            f"{kept_balanced_accuracy(labels, probs, everything):.3f} | "
            f"{'n/a' if ok_mel is None else f'{ok_mel:.3f}'} |",
            flush=True,
        )


def score_run(run_dir: Path, data: Path, seed: int) -> None:
    from skinpamper.data.images import index_images
    from skinpamper.data.load import load_dataset
    from skinpamper.evaluation.evaluate import run_chain
    from skinpamper.imaging import fit_square
    from skinpamper.training.run import Run

    run = Run.open(run_dir)
    config = run.config()
    chain = run_chain(run, run.load_model())
    if chain.abstention is None:
        raise SystemExit(f"{run_dir}: no OOD detector; run `skinpamper train --resume {run_dir}` first")
    dataset = load_dataset(data, size=config.image_size, fit=config.fit)
    test = run.split(dataset).test
    files = index_images(data)
    ids = dataset.meta["image_id"].astype(str).to_numpy()[test]
    originals = [np.asarray(Image.open(files[i]).convert("RGB")) for i in ids]
    size, fit = config.image_size, config.fit
    print(f"\n### {run_dir.name}: {config.model} at {size} px, {len(test):,} test images (seed {seed})\n")
    print("| shift | answered | unfamiliar | ok | balanced accuracy | mel sensitivity, ok |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    shift_rows(chain, originals, dataset.labels[test], size, fit, seed)
    inside = chain.score(np.stack([fit_square(Image.fromarray(o), size, fit) for o in originals]))
    rules = chain.abstention
    rng = np.random.default_rng(seed)
    sets = {name: [np.asarray(i) for i in make(rng)] for name, make in ood_sets.FAR.items()}
    print("\n| not dermoscopy | images | refused | AUROC, refusal score | AUROC, OOD distance alone |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, pictures in sets.items():
        scored = chain.score(np.stack([fit_square(Image.fromarray(p), size, fit) for p in pictures]))
        refused = np.mean(np.asarray(scored.statuses) == "out_of_distribution")
        print(
            f"| {name} | {len(pictures):,} | {100 * refused:.1f}% | "
            f"{auroc(refusal_score(rules, inside), refusal_score(rules, scored)):.3f} | "
            f"{auroc(inside.ood_scores, scored.ood_scores):.3f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, default=DEFAULT, help="HAM10000 with its JPEG folders")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shifts and of the synthetic sets")
    args = parser.parse_args()
    for run in args.runs:
        score_run(run, args.data, args.seed)


if __name__ == "__main__":
    main()
