"""Held-out-lesion accuracy of recipes on real HAM10000, over several seeds: mean and spread.

Each recipe trains on the lesion-grouped split of its seed (70/10/20) and is scored on the test part:
accuracy, balanced accuracy (mean recall) of the image alone, with 8-view TTA, with the patient's age,
sex and site (the run's metadata model) and with both, macro AUC, per-class recall, training minutes.
Usage: python benchmarks/accuracy.py [HAM10000_FOLDER] --recipes seed-original compact-28-ens3 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from skinpamper.classes import CODES

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ham10000"
# Settings per recipe; everything else is TrainConfig's default (augmentation: the 8 square symmetries).
# Recipes pin the defaults they were measured under, so the README's figures stay reproducible after a
# default changes: before colour constancy (default since session 4) and early stopping's removal
# (patience 8 before), and for the logit-adjust and channel-gain runs, patience 0 without the layer.
BEFORE = {"colour_constancy": False, "patience": 8}
NO_COLOUR_CONSTANCY = {"colour_constancy": False, "patience": 0}
COLOUR = {"brightness": 0.1, "contrast": 0.1, "saturation": 0.1}
FULL_AUGMENT = {"rotation": 15.0, "zoom": 0.1, "translate": 0.05, **COLOUR}
SEED = {**BEFORE, "model": "seed", "image_size": 28, "epochs": 25}
COMPACT = {"model": "compact_cnn", "epochs": 25, "imbalance": "class_weight"}
COMPACT_28 = {**BEFORE, **COMPACT, "image_size": 28}
PATCH_64 = {
    **COMPACT_28,
    **NO_COLOUR_CONSTANCY,
    "model": "patch_cnn",
    "image_size": 64,
    "imbalance": "logit_adjust",
}
RECIPES: dict[str, dict] = {
    # The notebook: its CNN, 25 epochs of Adam, augmentation against imbalance, no loss weighting.
    "seed-original": {**SEED, "imbalance": "none", "patience": 0, "augment": FULL_AUGMENT},
    "seed-weighted-full": {**SEED, "imbalance": "class_weight", "augment": FULL_AUGMENT},
    "seed-weighted-colour": {**SEED, "imbalance": "class_weight", "augment": COLOUR},
    "seed-weighted": {**SEED, "imbalance": "class_weight"},
    "seed-balanced": {**SEED, "imbalance": "balanced_sampling"},
    "seed-oversample": {**SEED, "imbalance": "oversample"},
    "compact-28": COMPACT_28,
    "compact-64": {**COMPACT_28, "image_size": 64},
    # Half the channels (16, 32, 64, 128): a full-resolution stage in front of the 28 px model's three.
    "compact-64-w05": {**COMPACT_28, "image_size": 64, "width": 0.5},
    "compact-28-wd": {**COMPACT_28, "weight_decay": 0.05},
    "compact-28-w15": {**COMPACT_28, "width": 1.5},
    # Oversampling repeats the minority classes up to nv's count, so an epoch is ~4.7x longer: 5 epochs
    # take about the gradient steps of 25 plain ones.
    "compact-28-oversample": {**COMPACT_28, "epochs": 5, "imbalance": "oversample"},
    # Three compact-28 runs on one split, their probabilities averaged.
    "compact-28-ens3": {**COMPACT_28, "members": 3},
    "compact-28-50": {**COMPACT_28, "epochs": 50},
    # What `skinpamper train` does by default: three compact_cnn members, no colour constancy, patience 0.
    "default": {**COMPACT, "image_size": 28, **NO_COLOUR_CONSTANCY, "members": 3},
    # compact-28 behind the shades-of-grey colour-constancy layer (skinpamper.models.colour): the default
    # between sessions 4 and 6, until the external test set showed it bought nothing there.
    "compact-28-cc": {**COMPACT, "image_size": 28, "colour_constancy": True, "patience": 0},
    "compact-28-cc-ens3": {
        **COMPACT,
        "image_size": 28,
        "colour_constancy": True,
        "patience": 0,
        "members": 3,
    },
    # compact-28 trained with a random gain per colour channel (white balance), for other cameras.
    "compact-28-gain": {**COMPACT_28, **NO_COLOUR_CONSTANCY, "augment": {"channel_gain": 0.2}},
    # patch_cnn: compact_cnn's 28 px stages behind a 2x2 stride-2 stem, on 64 px photos; then the same
    # for twice the epochs (64 px images may hold more than 25 epochs can learn).
    "patch-64-la": PATCH_64,
    "patch-64-la-e50": {**PATCH_64, "epochs": 50},
    # The logit-adjusted loss instead of class weights (training.losses); alone and as three members.
    "compact-28-la": {**COMPACT_28, **NO_COLOUR_CONSTANCY, "imbalance": "logit_adjust"},
    "compact-28-la-ens3": {**COMPACT_28, **NO_COLOUR_CONSTANCY, "imbalance": "logit_adjust", "members": 3},
    # ImageNet-pretrained EfficientNet-Lite0 fine-tuned with its own defaults (training.config's
    # MODEL_DEFAULTS: head first, then the network, early stages frozen), one model, at five sizes.
    # The shared JPEGs are 200x150: above 150 px the images are upsampled.
    **{
        f"lite0-{size}": {"model": "efficientnet_lite0", "image_size": size}
        for size in (64, 96, 128, 160, 192)
    },
}


def run_recipe(path: Path, name: str, seed: int, keep: Path | None) -> dict:
    """Train one recipe on one seed's split; test figures plain and with 8-view TTA.

    A recipe with "members": k trains k runs on the seed's split and scores their average
    (skinpamper.training.ensemble.train_ensemble). Minutes are the sum of the epochs' wall times (training
    and per-epoch validation) over all members. Finished runs kept in `keep` are reused, not retrained.
    """
    from skinpamper.data.load import load_dataset
    from skinpamper.data.splits import split_dataset
    from skinpamper.evaluation.evaluate import evaluate
    from skinpamper.training.config import resolve_config
    from skinpamper.training.ensemble import train_ensemble
    from skinpamper.training.run import Run
    from skinpamper.training.train import train, write_metadata_model, write_scores

    recipe = dict(RECIPES[name])
    members = recipe.pop("members", 1)
    config = resolve_config(**recipe, seed=seed, data_path=str(path))
    dataset = load_dataset(path, size=config.image_size, fit=config.fit)
    folder = (keep or Path(tempfile.mkdtemp())) / f"{name}-seed{seed}"
    if not (folder / "metrics.json").exists():
        if members > 1:
            train_ensemble(dataset, config, members, folder)
        else:
            split = split_dataset(dataset, config.val_fraction, config.test_fraction, seed)
            train(dataset, split, config, folder)
    run = Run.open(folder)
    if run.metadata_model() is None:  # kept from before metadata models: fit one on its training split
        split = run.split(dataset)
        write_metadata_model(run, dataset, split)
        write_scores(run, run.load_model(), dataset, split)
    runs = sorted(folder.glob("member-*")) or [folder]
    minutes = sum(row["seconds"] for run in runs for row in Run.open(run).history()) / 60
    metrics = run.metrics()
    scored = evaluate(folder, dataset, tta=True, n_boot=0, explain=False)
    return {
        **metrics["test"],
        "minutes": minutes,
        "tta_balanced_accuracy": scored.metrics_tta["balanced_accuracy"],
        "metadata_balanced_accuracy": metrics["with_metadata"]["test"]["balanced_accuracy"],
        "tta_metadata_balanced_accuracy": scored.metrics_metadata["balanced_accuracy"],
        "ok_share": metrics["abstention"]["test"]["shares"]["ok"],
        "ok_balanced_accuracy": metrics["abstention"]["test"]["balanced_accuracy_ok"],
    }


def spread(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    best = ["seed-original", "compact-28-ens3", "compact-64-w05"]
    parser.add_argument("--recipes", nargs="+", default=best, choices=RECIPES)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--keep", type=Path, help="Keep the run folders here (default: a temporary folder).")
    args = parser.parse_args()
    header = (
        "| recipe | accuracy | balanced acc | with TTA | with metadata | TTA + metadata | macro AUC | "
        "answered ok | bal acc of ok | " + " | ".join(CODES) + " | minutes |"
    )
    rows = []
    for name in args.recipes:
        results = [run_recipe(args.path, name, seed, args.keep) for seed in args.seeds]
        for seed, r in zip(args.seeds, results, strict=True):
            print(
                f"{name} seed {seed}: bal acc {r['balanced_accuracy']:.3f} acc {r['accuracy']:.3f} "
                f"auc {r['macro_auc']:.3f} tta bal acc {r['tta_balanced_accuracy']:.3f} "
                f"with metadata {r['metadata_balanced_accuracy']:.3f} "
                f"tta + metadata {r['tta_metadata_balanced_accuracy']:.3f} ok {r['ok_share']:.1%} "
                f"(bal acc {r['ok_balanced_accuracy']:.3f}) in {r['minutes']:.1f} min",
                flush=True,
            )
        keys = (
            "accuracy",
            "balanced_accuracy",
            "tta_balanced_accuracy",
            "metadata_balanced_accuracy",
            "tta_metadata_balanced_accuracy",
            "macro_auc",
            "ok_share",
            "ok_balanced_accuracy",
        )
        cells = [spread([r[key] for r in results]) for key in keys]
        cells += [spread([r["per_class_recall"][c] for r in results]) for c in CODES]
        cells.append(spread([r["minutes"] for r in results]))
        rows.append(f"| {name} ({len(results)} seeds) | " + " | ".join(cells) + " |")
    print(header)
    print("|" + " --- |" * (len(CODES) + 10))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
