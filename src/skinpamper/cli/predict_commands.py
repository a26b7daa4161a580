"""`skinpamper predict` and `skinpamper export`: use a trained run on new images, or ship it as ONNX."""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import TYPE_CHECKING

import click

from skinpamper import NOT_A_DIAGNOSIS
from skinpamper.classes import CODES
from skinpamper.cli.common import FiniteFloat

if TYPE_CHECKING:
    from skinpamper.serving.predict import Prediction, Predictor

OUTPUT_FORMATS = ("table", "json", "csv")


@click.command("predict")
@click.argument("model_path", metavar="RUN_OR_ONNX", type=click.Path(exists=True))
@click.argument("images", metavar="IMAGE_OR_DIR...", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(OUTPUT_FORMATS),
    default="table",
    show_default=True,
    help="Output form.",
)
@click.option(
    "--top-k", type=click.IntRange(1, len(CODES)), default=3, show_default=True, help="Classes listed."
)
@click.option(
    "--tta/--no-tta", default=True, show_default=True, help="Average the 8 flips/rotations of each image."
)
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True, help="Images per batch.")
@click.option("--age", type=FiniteFloat(0, 120), help="Patient's age in years (applies to every image).")
@click.option("--sex", help="Patient's sex, e.g. female or male (applies to every image).")
@click.option("--site", help="Body site as the training data names it, e.g. back, face (every image).")
@click.option(
    "--metadata",
    "metadata_csv",
    type=click.Path(exists=True, dir_okay=False),
    help="CSV of image_id, age, sex, localization (HAM10000's columns); image_id is the file name "
    "without extension.",
)
def predict_command(
    model_path: str,
    images: tuple[str, ...],
    fmt: str,
    top_k: int,
    tta: bool,
    batch_size: int,
    age: float | None,
    sex: str | None,
    site: str | None,
    metadata_csv: str | None,
) -> None:
    """Class probabilities for JPEG/PNG images (any size or mode), preprocessed as in training.

    Folders are searched recursively for .jpg/.jpeg/.png. Probabilities use the run's temperature
    (fitted on its validation split) when it has one. Given the patient's age, sex or body site
    (--age/--sex/--site, or --metadata for many patients), a run trained on data that records them
    combines them with the image; images without them are predicted from the image alone. An
    unreadable image is reported on stderr and the exit status is 1; the others are still predicted.

    \b
    Examples:
      skinpamper predict runs/seed photo.jpg
      skinpamper predict runs/seed photo.jpg --age 65 --sex male --site face
      skinpamper predict runs/seed/model.onnx photos/ --format csv --no-tta > predictions.csv
      skinpamper predict runs/seed photos/ --metadata HAM10000_metadata.csv
    """
    from pathlib import Path

    from skinpamper.errors import ConfigError
    from skinpamper.scoring.metadata_model import PatientInfo, read_patient_table
    from skinpamper.serving.predict import Predictor, find_images

    if metadata_csv and (age is not None or sex or site):
        raise click.UsageError("give --metadata or --age/--sex/--site, not both")
    paths = find_images(images)
    if not paths:
        raise ConfigError(f"{', '.join(images)}: no .jpg, .jpeg or .png files found")
    predictor = Predictor.load(model_path, tta=tta)
    patients: dict[Path, PatientInfo] = {}
    if metadata_csv:
        table = read_patient_table(Path(metadata_csv))
        patients = {path: table[path.stem] for path in paths if path.stem in table}
        predictor.patient_evidence(list(table.values()), source=metadata_csv, names=list(table))
        if len(patients) < len(paths):
            click.echo(
                f"{len(paths) - len(patients)} of {len(paths)} images have no row in {metadata_csv}: "
                "predicted from the image alone",
                err=True,
            )
    elif age is not None or sex or site:
        patients = dict.fromkeys(paths, PatientInfo(age, sex, site))
    predictions, failures = [], 0
    for result in predictor.predict_files(paths, batch_size, patients):
        if isinstance(result, Exception):
            click.echo(f"skipped: {result}", err=True)
            failures += 1
        else:
            predictions.append(result)
    render = {"table": _table, "json": _json, "csv": _csv}[fmt]
    click.echo(render(predictions, predictor, top_k), nl=False)
    sys.exit(1 if failures else 0)


def _model_line(predictor: Predictor) -> str:
    card = predictor.card
    calibration = f"calibrated (T={card.temperature:.2f})" if predictor.calibrated else "uncalibrated"
    views = "8-view TTA" if predictor.tta else "no TTA"
    return f"model {card.model_id} ({predictor.backend}), {calibration}, {views}"


def _image_label(prediction: Prediction) -> str:
    return prediction.image + (" (+ age/sex/site)" if prediction.with_metadata else "")


def _table(predictions: list[Prediction], predictor: Predictor, top_k: int) -> str:
    rows = [[_image_label(p), *(f"{code} {prob:.3f}" for code, prob in p.top_k(top_k))] for p in predictions]
    header = ["image", *(f"#{rank}" for rank in range(1, top_k + 1))]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join([_model_line(predictor), *lines, NOT_A_DIAGNOSIS]) + "\n"


def _json(predictions: list[Prediction], predictor: Predictor, top_k: int) -> str:
    document = {
        "model_id": predictor.card.model_id,
        "note": NOT_A_DIAGNOSIS,
        "predictions": [p.to_dict(top_k) for p in predictions],
    }
    return json.dumps(document, indent=2) + "\n"


def _csv(predictions: list[Prediction], predictor: Predictor, top_k: int) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "image",
            "top_class",
            "top_probability",
            *(f"p_{c}" for c in CODES),
            "top_k",
            "calibrated",
            "tta",
            "with_metadata",
            "model_id",
            "note",
        ]
    )
    for p in predictions:
        ranked = " ".join(f"{code}:{prob:.4f}" for code, prob in p.top_k(top_k))
        writer.writerow(
            [
                p.image,
                p.top_class,
                f"{max(p.probabilities):.6f}",
                *(f"{v:.6f}" for v in p.probabilities),
                ranked,
                p.calibrated,
                p.tta,
                p.with_metadata,
                p.model_id,
                p.note,
            ]
        )
    return buffer.getvalue()


@click.command("export")
@click.argument("run_dir", metavar="RUN", type=click.Path(file_okay=False, exists=True))
@click.option(
    "--format", "fmt", type=click.Choice(("onnx",)), default="onnx", show_default=True, help="Export format."
)
@click.option("--out", type=click.Path(dir_okay=False), help="Output file [default: RUN/model.onnx].")
def export_command(run_dir: str, fmt: str, out: str | None) -> None:
    """Export the run's best model as ONNX, checked against Keras before the file is kept.

    The file carries the run's image size, fit, temperature and test metrics, so `skinpamper serve`
    and `skinpamper predict` need nothing else (and no Keras: pip install 'skinpamper[serve]').

    \b
    Example:
      skinpamper export runs/seed --format onnx
    """
    from skinpamper.serving.export import PARITY_LIMIT, export_onnx

    result = export_onnx(run_dir, out)
    size = result.path.stat().st_size / 1e6
    click.echo(f"wrote {result.path} ({size:.1f} MB), model {result.card.model_id}")
    click.echo(
        f"parity: max |p_onnx - p_keras| = {result.max_abs_diff:.1e} over {result.samples} random images "
        f"(limit {PARITY_LIMIT:.0e}): ok"
    )
    click.echo(f"serve it: skinpamper serve {result.path}")
