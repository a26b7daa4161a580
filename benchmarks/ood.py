"""How well a run refuses images that are not dermoscopy, and what refusing costs on its own test split.

In distribution: the run's test split. Out of distribution (rebuilt offline by ood_sets.py): natural
photos and faces, other medical images, noise and flat colours, rendered text and charts (far); the
test images turned grey or inverted (near). Every image goes through the run's own preprocessing.
Per set it prints AUROC and the false-positive rate at 95% true-positive rate of the run's detector
(Mahalanobis distance on the classifier's features), and, as the scores it was chosen against,
of the maximum softmax probability (MSP) and of the energy of the logits (single models only); then
the share of the test split refused and called uncertain at the run's thresholds, and balanced
accuracy of all test images against that of the ones answered ok.
Usage: python benchmarks/ood.py RUN... [--data HAM10000_FOLDER] [--seed 0]
Targets (issue 14): AUROC >= 0.99 on far OOD; about 5% of test images refused; balanced accuracy of
the kept images above that of all of them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.special import logsumexp
from sklearn.metrics import roc_auc_score, roc_curve

import ood_sets

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ham10000"


def fpr_at_95_tpr(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """Share of in-distribution images flagged when 95% of the out-of-distribution ones are."""
    labels = np.r_[np.zeros(len(in_scores)), np.ones(len(out_scores))]
    fpr, tpr, _ = roc_curve(labels, np.r_[in_scores, out_scores])
    return float(fpr[np.searchsorted(tpr, 0.95)])


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    labels = np.r_[np.zeros(len(in_scores)), np.ones(len(out_scores))]
    return float(roc_auc_score(labels, np.r_[in_scores, out_scores]))


def _energy(model, features: np.ndarray) -> np.ndarray | None:
    """-logsumexp of the logits that the final Dense layer computes from `features` (None for wrappers)."""
    import keras

    head = model.layers[-1]
    if not isinstance(head, keras.layers.Dense):
        return None
    kernel, bias = head.get_weights()
    return -logsumexp(features @ kernel + bias, axis=1)


def score_sets(run_dir: Path, data: Path, seed: int) -> None:
    from skinpamper.data.load import load_dataset
    from skinpamper.imaging import fit_square
    from skinpamper.models.features import feature_model
    from skinpamper.scoring.abstention import abstention_summary
    from skinpamper.scoring.calibration import apply_temperature
    from skinpamper.training.run import Run
    from skinpamper.training.trust import probabilities_and_features

    run = Run.open(run_dir)
    config = run.config()
    saved = run.abstention()
    if saved is None:
        raise SystemExit(f"{run_dir}: no OOD detector; run `skinpamper train --resume {run_dir}` first")
    detector, rules = saved
    dataset = load_dataset(data, size=config.image_size, fit=config.fit)
    test = run.split(dataset).test
    model = run.load_model()
    scorer = feature_model(model)

    def scores(images: np.ndarray) -> dict[str, np.ndarray | None]:
        probs, features = probabilities_and_features(scorer, images)
        return {
            "mahalanobis": detector.score(features),
            "msp": -probs.max(axis=1),
            "energy": _energy(model, features),
        }

    test_images = dataset.images[test]
    rng = np.random.default_rng(seed)
    size, fit = config.image_size, config.fit
    sets = {
        name: np.stack([fit_square(i, size, fit) for i in make(rng)]) for name, make in ood_sets.FAR.items()
    }
    sets["grey HAM test images (near)"] = ood_sets.grey(test_images)
    sets["inverted HAM test images (near)"] = ood_sets.inverted(test_images)
    inside = scores(test_images)
    print(f"\n### {run_dir.name}: {config.model} at {config.image_size} px, {len(test):,} test images\n")
    columns = ("images", "AUROC", "FPR at 95% TPR", "refused at the threshold", "AUROC, MSP", "AUROC, energy")
    print("| OOD set | " + " | ".join(columns) + " |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, images in sets.items():
        out = scores(images)
        energy = "n/a" if inside["energy"] is None else f"{auroc(inside['energy'], out['energy']):.3f}"
        refused = np.mean(out["mahalanobis"] > rules.ood_threshold)
        print(
            f"| {name} | {len(images):,} | {auroc(inside['mahalanobis'], out['mahalanobis']):.3f} | "
            f"{fpr_at_95_tpr(inside['mahalanobis'], out['mahalanobis']):.3f} | {100 * refused:.1f}% | "
            f"{auroc(inside['msp'], out['msp']):.3f} | {energy} |",
            flush=True,
        )
    probs, _ = probabilities_and_features(scorer, test_images)
    calibrated = apply_temperature(probs, run.temperature())
    summary = abstention_summary(rules, inside["mahalanobis"], calibrated, dataset.labels[test])
    shares = summary["shares"]
    print(
        f"\nTest split at the run's thresholds: {100 * shares['out_of_distribution']:.1f}% refused, "
        f"{100 * shares['uncertain']:.1f}% uncertain, {100 * shares['ok']:.1f}% ok. Balanced accuracy: "
        f"all {summary['balanced_accuracy_all']:.3f}, "
        f"not refused {summary['balanced_accuracy_in_distribution']:.3f}, "
        f"answered ok {summary['balanced_accuracy_ok']:.3f}. AURC {summary['aurc']:.3f}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random crops and synthetic images")
    args = parser.parse_args()
    for run in args.runs:
        score_sets(run, args.data, args.seed)


if __name__ == "__main__":
    main()
