"""`skinpamper predict` and `skinpamper export`: use a trained run on new images, or ship it as ONNX."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from skinpamper import NOT_A_DIAGNOSIS
from skinpamper.classes import CODES
from skinpamper.cli.common import FiniteFloat
from skinpamper.workflows.prediction import ENGINES

if TYPE_CHECKING:
    from pathlib import Path

    from skinpamper.serving.batch import Patients
    from skinpamper.serving.predict import Prediction, Predictor

OUTPUT_FORMATS = ("table", "json", "csv")


@click.command("predict", short_help="Predict classes and a status for images.")
@click.argument("model_path", metavar="RUN_OR_ONNX", type=click.Path(exists=True))
@click.argument("images", metavar="IMAGE_OR_DIR...", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(OUTPUT_FORMATS),
    default="table",
    show_default=True,
    help="Output form.",
)
@click.option(
    "--top-k",
    type=click.IntRange(1, len(CODES)),
    default=3,
    show_default=True,
    help="Classes listed (table and json; csv has every class).",
)
@click.option(
    "--tta/--no-tta",
    default=False,
    show_default=True,
    help="Average the 8 flips/rotations of each image: 8x the time, for -0.004 to +0.014 balanced "
    "accuracy in the benchmarks (docs/training.md); off, as in Python and the service.",
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
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Write one row per image to FILE.csv or FILE.parquet, in chunks as they come, with a progress "
    "bar; for archives of any size.",
)
@click.option("--resume", is_flag=True, help="With --out: skip the images that output already scored.")
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="local",
    show_default=True,
    help="With --out: this machine's cores, or Ray Data (pip install 'skinpamper[ray]'; ONNX only).",
)
@click.option("--address", help="With --engine ray: the Ray cluster to join [default: start one here].")
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
    out: str | None,
    resume: bool,
    engine: str,
    address: str | None,
) -> None:
    """Class probabilities for JPEG/PNG images (any size or mode), preprocessed as in training.

    Folders are searched recursively for .jpg/.jpeg/.png. Probabilities use the run's temperature
    (fitted on its validation split) when it has one. Given the patient's age, sex or body site
    (--age/--sex/--site, or --metadata for many patients), a run trained on data that records them
    combines them with the image; images without them are predicted from the image alone. An
    unreadable image is reported on stderr and the exit status is 1; the others are still predicted.

    With --out the rows go to a file as they come (an unreadable image gets a row with its error) and
    the file appears under its name when every image has a row; --resume continues a killed job.
    --engine ray spreads the work over a Ray cluster (docs/batch-scoring.md); it also reads URIs
    that Ray Data reads, such as s3://bucket/folder.

    \b
    Examples:
      skinpamper predict runs/seed photo.jpg
      skinpamper predict runs/seed photo.jpg --tta --age 65 --sex male --site face
      skinpamper predict runs/seed/model.onnx photos/ --format csv > predictions.csv
      skinpamper predict runs/seed photos/ --metadata HAM10000_metadata.csv
      skinpamper predict runs/seed/model.onnx archive/ --out scores.parquet --resume
      skinpamper predict runs/seed/model.onnx /shared/archive --out s.csv --engine ray --address HEAD:6379
    """
    from skinpamper.errors import ConfigError
    from skinpamper.serving.batch import stream_predictions
    from skinpamper.serving.predict import Predictor, find_images

    _check_job_options(images, out, resume, engine, address, metadata_csv, age, sex, site)
    if engine == "ray":
        from skinpamper.serving.ray_batch import check_ray_job

        check_ray_job(model_path)
    uris = [source for source in images if "://" in source]
    paths = find_images([source for source in images if "://" not in source])
    if not paths and not uris:
        raise ConfigError(f"{', '.join(images)}: no .jpg, .jpeg or .png files found")
    predictor = Predictor.load(model_path, tta=tta)
    patients = _patients(predictor, paths, metadata_csv, age, sex, site)
    if out is not None:
        _score_job(model_path, predictor, [*paths, *uris], out, resume, engine, address, batch_size, patients)
        return
    predictions, failures = [], 0
    header = True
    for names, results in stream_predictions(predictor, paths, batch_size, patients=patients):
        for result in results:
            if isinstance(result, Exception):
                click.echo(f"skipped: {result}", err=True)
                failures += 1
        if fmt == "csv":  # rows as they come, the columns of --out FILE.csv
            click.echo(_csv_rows(names, results, predictor, header), nl=False)
            header = False
        else:
            predictions += [result for result in results if not isinstance(result, Exception)]
    if fmt != "csv":
        click.echo({"table": _table, "json": _json}[fmt](predictions, predictor, top_k), nl=False)
    sys.exit(1 if failures else 0)


def _check_job_options(
    images: tuple[str, ...],
    out: str | None,
    resume: bool,
    engine: str,
    address: str | None,
    metadata_csv: str | None,
    age: float | None,
    sex: str | None,
    site: str | None,
) -> None:
    """Refuse option combinations that cannot mean anything, before any model is loaded."""
    from pathlib import Path

    if metadata_csv and (age is not None or sex or site):
        raise click.UsageError("give --metadata or --age/--sex/--site, not both")
    if out is None and (resume or engine != "local"):
        raise click.UsageError("--resume and --engine ray write to a file: add --out FILE.csv|FILE.parquet")
    if address is not None and engine != "ray":
        raise click.UsageError("--address joins a Ray cluster: add --engine ray")
    for source in images:
        if "://" in source and engine != "ray":
            raise click.BadParameter(f"{source}: URIs are read by --engine ray only", param_hint="IMAGE")
        if "://" not in source and not Path(source).exists():
            raise click.BadParameter(f"{source}: no such file or folder", param_hint="IMAGE")


def _patients(
    predictor: Predictor,
    paths: list[Path],
    metadata_csv: str | None,
    age: float | None,
    sex: str | None,
    site: str | None,
) -> Patients:
    """The patient metadata the options give, checked against the model before any image is read."""
    from pathlib import Path

    from skinpamper.scoring.metadata_model import PatientInfo, read_patient_table
    from skinpamper.serving.batch import NOBODY, Patients

    if metadata_csv:
        table = read_patient_table(Path(metadata_csv))
        patients = Patients(by_id=table)
        patients.check(predictor, metadata_csv)
        missing = sum(path.stem not in table for path in paths)
        if missing:
            click.echo(
                f"{missing} of {len(paths)} images have no row in {metadata_csv}: "
                "predicted from the image alone",
                err=True,
            )
        return patients
    if age is not None or sex or site:
        patients = Patients(everyone=PatientInfo(age, sex, site))
        patients.check(predictor)
        return patients
    return NOBODY


def _score_job(
    model_path: str,
    predictor: Predictor,
    sources: list,
    out: str,
    resume: bool,
    engine: str,
    address: str | None,
    batch_size: int,
    patients: Patients,
) -> None:
    """Score into --out with a progress bar, then one summary line; exit 1 if any image failed."""
    from skinpamper.cli.common import progress_bar
    from skinpamper.workflows.prediction import score_archive

    with progress_bar("scoring") as update:
        summary = score_archive(
            model_path,
            predictor,
            sources,
            out,
            resume=resume,
            engine=engine,
            address=address,
            batch_size=batch_size,
            patients=patients,
            progress=update,
        )
    rate = (summary.scored + summary.failed) / max(summary.seconds, 1e-9)
    click.echo(
        f"wrote {out}: {summary.scored:,} scored, {summary.failed:,} failed (rows with their error), "
        f"{summary.skipped:,} already there; {rate:,.0f} images/s. {NOT_A_DIAGNOSIS}",
        err=True,
    )
    sys.exit(1 if summary.failed else 0)


STATUS_TEXT = {
    "ok": "ok",
    "unfamiliar": "unfamiliar: dermoscopy unlike the training images (another device or clinic?); "
    "answered, but the accuracy measured on the training data may not hold",
    "uncertain": "uncertain: the model is not sure, see a dermatologist",
    "out_of_distribution": "out of distribution: this does not look like a dermoscopy image",
    "unchecked": "unchecked",
}


def _model_line(predictor: Predictor) -> str:
    card = predictor.card
    calibration = f"calibrated (T={card.temperature:.2f})" if predictor.calibrated else "uncalibrated"
    views = "8-view TTA" if predictor.tta else "no TTA"
    return f"model {card.model_id} ({predictor.backend}), {calibration}, {views}"


def _status_line(predictor: Predictor) -> str:
    """How statuses were decided, or why they were not."""
    rules = predictor.abstention
    if rules is None:
        return (
            "status unchecked: this model was saved without an out-of-distribution detector; "
            "`skinpamper train --resume RUN` on a finished run fits one (then export again)"
        )
    confidence = (
        f"uncertain when the top probability is below {rules.confidence_threshold(predictor.tta):.2f}"
    )
    if rules.dermoscopy_threshold is None:
        return (
            f"status: out_of_distribution when the OOD score is above {rules.ood_threshold:.1f} "
            f"(keeps {rules.ood_keep:.0%} of validation images), {confidence}"
        )
    line = (
        f"status: out_of_distribution when not dermoscopy (log-odds above {rules.dermoscopy_threshold:.2f} "
        f"or OOD score above {rules.far_ood_threshold:.1f}), {confidence}, unfamiliar when the OOD score "
        f"is above {rules.ood_threshold:.1f} (keeps {rules.ood_keep:.0%} of validation images)"
    )
    rule = rules.rule_out(predictor.tta)
    if rule is not None:
        line += (
            f"\nmel?: melanoma not ruled out when p(mel) >= {rule.threshold:.3f} (validation sensitivity "
            f"{rule.sensitivity:.2f}, specificity {rule.specificity:.2f})"
        )
    return line


def _image_label(prediction: Prediction) -> str:
    return prediction.image + (" (+ age/sex/site)" if prediction.with_metadata else "")


def _melanoma_cell(prediction: Prediction) -> str:
    flag = prediction.melanoma_not_ruled_out
    return "n/a" if flag is None else "not ruled out" if flag else "ruled out"


def _table_row(prediction: Prediction, top_k: int) -> list[str]:
    """An out-of-distribution image shows its status instead of probabilities that look confident."""
    if prediction.status == "out_of_distribution":
        return [_image_label(prediction), "OOD", "", STATUS_TEXT[prediction.status], *[""] * (top_k - 1)]
    ranked = (f"{code} {prob:.3f}" for code, prob in prediction.top_k(top_k))
    return [_image_label(prediction), prediction.status, _melanoma_cell(prediction), *ranked]


def _table(predictions: list[Prediction], predictor: Predictor, top_k: int) -> str:
    rows = [_table_row(p, top_k) for p in predictions]
    header = ["image", "status", "mel?", *(f"#{rank}" for rank in range(1, top_k + 1))]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    seen = {p.status for p in predictions}
    unsure = [STATUS_TEXT[status] for status in ("unfamiliar", "uncertain") if status in seen]
    head = [_model_line(predictor), _status_line(predictor)]
    return "\n".join([*head, *lines, *unsure, NOT_A_DIAGNOSIS]) + "\n"


def _json(predictions: list[Prediction], predictor: Predictor, top_k: int) -> str:
    document = {
        "model_id": predictor.card.model_id,
        "note": NOT_A_DIAGNOSIS,
        "predictions": [p.to_dict(top_k) for p in predictions],
    }
    return json.dumps(document, indent=2) + "\n"


def _csv_rows(names: list[str], results: list, predictor: Predictor, header: bool) -> str:
    """CSV text of one batch's rows (rows.py), with the header before the first batch."""
    import pandas as pd

    from skinpamper.serving.batch import result_rows
    from skinpamper.serving.rows import csv_cell, row_columns
    from skinpamper.serving.score_file import csv_text

    rows = result_rows(results, names, predictor.card.model_id)
    # Fixed columns: a first batch of broken files must not decide the header of the whole output.
    frame = csv_text(pd.DataFrame(rows).reindex(columns=row_columns()), csv_cell)
    return frame.to_csv(header=header, index=False, lineterminator="\n")


@click.command("export", short_help="Export a run as ONNX, checked against Keras.")
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
