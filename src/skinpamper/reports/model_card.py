"""`model_card`: the model card of a run (Mitchell et al., FAT* 2019), generated from its own files.

Its sections follow the paper's: model details, intended use and out-of-scope use, factors, metrics,
training and evaluation data, quantitative analyses (with 95% intervals and by subgroup), how the model
treats images unlike its training data, ethical considerations and caveats. Every figure is read from
the run folder through `runfolder.RunFolder` (config.json, dataset.json, metrics.json, abstention.json,
environment.json, members.json) or from an evaluation of it; nothing is written by hand, so a card
cannot drift from its model. The fixed sentences say what no file can: what the tool is for and what
HAM10000 is not.
"""

from __future__ import annotations

from pathlib import Path, PureWindowsPath
from typing import Any

from skinpamper import NOT_A_DIAGNOSIS, __version__
from skinpamper.classes import CLASSES, CODES
from skinpamper.reports.markdown import markdown_table
from skinpamper.reports.trust import FIGURE_NAMES, abstention_table, status_table, subgroup_table
from skinpamper.runfolder import RunFolder
from skinpamper.runfolder.files import CONFIG, DATASET, ENVIRONMENT, METRICS

INTENDED = (
    "Research and teaching on dermoscopy images of single skin lesions: comparing training recipes, "
    "studying where and for whom a classifier fails, and building decision-support prototypes that a "
    "dermatologist reviews. Users: machine-learning engineers, students and dermatology researchers."
)
OUT_OF_SCOPE = (
    "Diagnosis, triage or reassurance of any person; use without a dermatologist; images that are not "
    "dermoscopy close-ups of one lesion (clinical or phone photos, portraits, histology, screenshots: the "
    "out-of-distribution check refuses many of them, not all); patients, devices and diagnoses unlike the "
    "training data (see Factors and Caveats); the classes it does not know (any lesion outside the seven)."
)
FACTORS = (
    "Sex, age and body site are recorded for nearly every HAM10000 image and are broken down below. "
    "Skin type (Fitzpatrick) is not recorded; HAM10000 comes from a clinic in Vienna and a skin-cancer "
    "practice in Australia, so lighter skin types dominate and performance on darker skin is unknown. "
    "The camera and clinic matter: on images from other clinics, models trained on HAM10000 score well "
    "below their figures on its own held-out lesions (the documentation's results give the measured gap)."
)
METRICS_WHY = (
    "Balanced accuracy (mean per-class recall) is the headline because nv is two thirds of HAM10000 and "
    "plain accuracy rewards never finding a melanoma; macro ROC AUC shows the ranking independent of a "
    "threshold; melanoma sensitivity at 90% specificity answers 'how many melanomas does it miss at a "
    "false-alarm rate one can live with'. Intervals are 95% bootstrap intervals resampling whole lesions."
)
CAVEATS = (
    "Labels: about half of HAM10000's diagnoses are confirmed by histopathology, the rest by follow-up, "
    "expert consensus or confocal microscopy. Images of one lesion never sit in two splits, but the test "
    "split comes from the same clinics and cameras as training, so it overstates performance elsewhere. "
    "Probabilities are calibrated on the validation split only. Age, sex and site, when given, are "
    "combined by Bayes' rule assuming they are independent of the pixels given the class, and encode "
    "HAM10000's population rather than biology alone."
)


def dataset_name(source: object) -> str:
    """The last part of a dataset's path: the card is published (inside the ONNX file, by the service),
    so the folders above it, which name the user and their machine, stay out of it."""
    return PureWindowsPath(str(source)).name or "?"  # splits at / and at \ on any OS


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _details(config: dict[str, Any], environment: dict[str, Any], members: list[Any], model_id: str) -> str:
    averaged = f", the mean of {len(members)} members trained on one split" if members else ""
    cc = "a shades-of-grey colour-constancy layer in front; " if config.get("colour_constancy") else ""
    lines = [
        f"- Model: `{model_id}`, {config.get('model', '?')} at {config.get('image_size', '?')} px{averaged}; "
        f"{cc}{config.get('epochs', '?')} epochs, imbalance handled by {config.get('imbalance', '?')}.",
        f"- Made by Skin Pamper {environment.get('packages', {}).get('skinpamper', __version__)} on "
        f"{environment.get('device', 'an unrecorded device')}, Keras backend "
        f"{environment.get('keras_backend', '?')}, git commit {environment.get('git_commit') or 'unknown'}.",
        "- Output: probabilities over seven classes: "
        + ", ".join(f"{c.code} ({c.name})" for c in CLASSES)
        + ". Each prediction has a status: ok, unfamiliar (answered with a warning), uncertain, or "
        "out_of_distribution (refused), and says whether melanoma is ruled out.",
    ]
    return "\n".join(lines)


def _training_data(data: dict[str, Any]) -> str:
    if not data:
        return "Not recorded (no dataset.json)."
    counts = data.get("class_counts", {})
    classes = ", ".join(f"{code} {counts.get(code, 0):,}" for code in CODES)
    sizes = data.get("split_sizes", {})
    grouped = (
        "grouped by lesion (no lesion in two splits)" if data.get("grouped") else "NOT grouped by lesion"
    )
    split = ", ".join(f"{k} {v:,}" for k, v in sizes.items())
    digest = f" (content digest `{data['digest']}`)" if "digest" in data else ""
    return (
        f"{data.get('images', 0):,} images from `{dataset_name(data.get('source', '?'))}`{digest} at "
        f"{data.get('image_size', '?')} px ({classes}). Split {split}, {grouped}. "
        "The metadata model, calibration and OOD detector were fitted on the training and validation "
        "splits only; the test split was only scored."
    )


def _quantitative(subgroups: dict[str, Any] | None, parts: dict[str, Any], scored: str) -> str:
    if subgroups is None:
        if parts.get("balanced_accuracy") is None:
            return "Not evaluated yet."
        return (
            f"Balanced accuracy {parts['balanced_accuracy']:.3f} on {scored}, without intervals or "
            "subgroups: the run was scored before Skin Pamper reported them (`skinpamper train --resume "
            "RUN` re-scores a finished run; `skinpamper evaluate RUN` reports both)."
        )
    overall = subgroups["overall"]
    lines = [f"On {scored} ({overall['n']:,} images):", ""]
    for name, label in FIGURE_NAMES.items():
        interval = overall.get(f"{name}_ci95")
        value = overall.get(name)
        text = "n/a" if value is None else f"{value:.3f}"
        lines.append(
            f"- {label}: {text}" + (f" (95% CI {interval[0]:.3f}-{interval[1]:.3f})" if interval else "")
        )
    recall = parts.get("per_class_recall")
    if recall:
        lines.append("- recall per class: " + ", ".join(f"{c} {_share(recall.get(c))}" for c in CODES))
    fused = parts.get("with_metadata_balanced_accuracy")
    if fused is not None:
        lines.append(f"- balanced accuracy with the patient's age, sex and site: {fused:.3f}")
    lines += ["", "### By subgroup", "", markdown_table(subgroup_table(subgroups, scored))]
    flagged = [f"{g['factor']} {g['group']}" for g in subgroups["groups"] if g.get("below_overall")]
    lines.append(
        "Subgroups whose interval lies wholly below the overall figure: "
        + (", ".join(flagged) or "none")
        + "."
    )
    return "\n".join(lines)


def _ood(rules: dict[str, Any] | None, summary: dict[str, Any] | None, tta: bool) -> str:
    if rules is None:
        return (
            "This model has no out-of-distribution detector (saved before Skin Pamper had one): it answers "
            "any image, portraits and screenshots included. `skinpamper train --resume RUN` fits one."
        )
    if rules["ood_threshold"] == 0:  # scoring.ood's flat detector: the features never varied
        return (
            "This model's features did not vary beyond rounding on its training images (a network that "
            "has not learnt yet), so its out-of-distribution detector refuses nothing: it answers any "
            "image, portraits and screenshots included. Train longer or from pretrained weights."
        )
    text = (
        "The Mahalanobis distance of an image's features to the nearest class of the training split is its "
        f"OOD score; above {rules['ood_threshold']:.1f} (the score {100 * rules['ood_keep']:.0f}% of "
        "validation images stay under) the answer is out_of_distribution. How well it refuses photos, "
        "faces, noise and screenshots is measured by benchmarks/ood.py (results in the documentation); "
        "images that look like dermoscopy but come from other devices are not reliably refused."
    )
    if rules.get("dermoscopy_threshold") is not None:
        text = _two_kinds(rules)
    if summary is not None:
        text += "\n\n" + markdown_table(abstention_table(summary, rules, tta))
        if "by_status" in summary:
            text += "\n\n" + markdown_table(status_table(summary))
    return text


def abstention_record(folder: RunFolder) -> dict[str, Any] | None:
    """The run's abstention thresholds as the pages show them; None for a run without a detector."""
    rules = folder.abstention_rules()
    return None if rules is None else rules.to_dict()


def _two_kinds(rules: dict[str, Any]) -> str:
    """How a run with a dermoscopy detector tells what is not dermoscopy from unfamiliar dermoscopy."""
    keep = 100 * rules["dermoscopy_keep"]
    return (
        "Two kinds of unfamiliar are told apart. A dermoscopy-vs-not detector on the image's features "
        f"refuses (out_of_distribution) above log-odds {rules['dermoscopy_threshold']:.2f}, and so does "
        "an OOD score (Mahalanobis distance to the nearest training class) above "
        f"{rules['far_ood_threshold']:.1f}; "
        f"each keeps {keep:.0f}% of validation dermoscopy, plain and under simulated clinic shifts (dark "
        "rim, zoom-out, colour cast, JPEG, blur, aspect). Dermoscopy with an OOD score above "
        f"{rules['ood_threshold']:.1f} (the score {100 * rules['ood_keep']:.0f}% of validation images stay "
        "under) is answered but marked unfamiliar: another device or clinic, where the figures below may "
        "not hold. Simulated shifts and the benchmarks are in docs/trust.md."
    )


def model_card(run_dir: Path, evaluation: dict[str, Any] | None = None, model_id: str | None = None) -> str:
    """The card as Markdown: from the run's files, and from `evaluation` (an evaluation's metrics.json
    content) when given, whose figures then replace the run's own test-split figures."""
    folder = RunFolder(run_dir)
    config = folder.read(CONFIG) or {}
    data = folder.read(DATASET) or {}
    metrics = folder.read(METRICS) or {}
    environment = folder.read(ENVIRONMENT) or {}
    members = folder.members()
    rules = abstention_record(folder)
    if evaluation is None:
        test = metrics.get("test", {})
        fused = metrics.get("with_metadata", {}).get("test", {})
        parts = {**test, "with_metadata_balanced_accuracy": fused.get("balanced_accuracy")}
        subgroups, summary, tta = metrics.get("subgroups"), metrics.get("abstention", {}).get("test"), False
        scored = "the run's test split (plain probabilities)"
    else:
        plain = evaluation.get("tta") or evaluation.get("plain") or {}
        recall = {c: v.get("sensitivity") for c, v in plain.get("per_class", {}).items()}
        fused = evaluation.get("with_metadata") or {}
        parts = {
            "per_class_recall": recall,
            "with_metadata_balanced_accuracy": fused.get("balanced_accuracy"),
        }
        subgroups, summary, tta = (
            evaluation.get("subgroups"),
            evaluation.get("abstention"),
            bool(evaluation.get("tta")),
        )
        scored = f"the {evaluation.get('part', '?')} images of {dataset_name(evaluation.get('data', '?'))}"
    name = model_id or run_dir.resolve().name
    sections = [
        f"# Model card: {name}",
        f"> {NOT_A_DIAGNOSIS}",
        "## Model details",
        _details(config, environment, members, name),
        "## Intended use",
        INTENDED,
        "## Out-of-scope use",
        OUT_OF_SCOPE,
        "## Factors",
        FACTORS,
        "## Metrics",
        METRICS_WHY,
        "## Training data",
        _training_data(data),
        "## Evaluation data",
        f"{scored.capitalize()}.",
        "## Quantitative analyses",
        _quantitative(subgroups, parts, scored),
        "## Out-of-distribution behaviour",
        _ood(rules, summary, tta),
        "## Ethical considerations and caveats",
        CAVEATS,
        "## Not a diagnosis",
        NOT_A_DIAGNOSIS,
    ]
    return "\n\n".join(section.strip() for section in sections) + "\n"
