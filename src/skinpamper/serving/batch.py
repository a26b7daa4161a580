"""Score an image archive of any size on one machine: parallel decoding, bounded memory, chunked output.

Files are cut into batches; a bounded pool of threads decodes a few batches ahead (Pillow releases the
GIL while it decodes and resizes, and threads hand arrays over without copying them between
processes) while the calling thread runs the model on the batch before. At most `workers + 1`
decoded batches exist at any time, whatever the number of files, and results leave as they come:
`stream_predictions` yields them in order, `score_files` writes them in chunks to a resumable
scores file. The decoding and scoring of one batch are the functions the Ray engine maps over its
blocks, so both engines give the same rows.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from skinpamper.errors import ImageError
from skinpamper.imaging import MAX_PIXELS, load_image
from skinpamper.scoring.metadata_model import PatientInfo
from skinpamper.serving.predict import Prediction, Predictor, display_name
from skinpamper.serving.rows import error_row, prediction_row
from skinpamper.serving.score_file import ScoreFile

BATCH_SIZE = 256  # images per model call: big enough to amortise the call, small enough to stay in cache
CHUNK_ROWS = 4096  # rows per part of the output: what a killed job can lose, a few seconds of work
Progress = Callable[[int, int], None]  # (images done, images in the job)
Result = Prediction | ImageError


@dataclass(frozen=True)
class Patients:
    """Who each image belongs to: one patient for every image, or rows by image id (the file stem)."""

    everyone: PatientInfo | None = None
    by_id: Mapping[str, PatientInfo] = field(default_factory=dict)

    def of(self, image: str) -> PatientInfo | None:
        """The metadata of a file, path or URI; None when nothing is known."""
        return self.by_id.get(PurePosixPath(image).stem, self.everyone) if self.by_id else self.everyone

    def check(self, predictor: Predictor, source: str = "patient metadata") -> None:
        """Refuse metadata the model cannot use before any image is read."""
        infos = [self.everyone, *self.by_id.values()]
        predictor.patient_evidence(infos, source, ["every image", *self.by_id])


NOBODY = Patients()  # no metadata: every image is predicted from its pixels alone


@dataclass(frozen=True)
class DecodedBatch:
    """Files decoded to the model's input: `images` holds those whose `errors` entry is None."""

    names: list[str]
    images: np.ndarray  # (number decoded, S, S, 3) uint8
    errors: list[str | None]


def decode_batch(
    sources: Sequence[Path | bytes],
    names: Sequence[str],
    size: int,
    fit: str,
    max_pixels: int = MAX_PIXELS,
) -> DecodedBatch:
    """Decode files (or their bytes) with training's own imaging code; a failure becomes its message."""
    images, errors = [], []
    for source, name in zip(sources, names, strict=True):
        try:
            images.append(load_image(source, size, fit, name=name, max_pixels=max_pixels))
            errors.append(None)
        except ImageError as exc:
            errors.append(str(exc))
    stacked = np.stack(images) if images else np.empty((0, size, size, 3), np.uint8)
    return DecodedBatch(list(names), stacked, errors)


def predict_batch(predictor: Predictor, batch: DecodedBatch, patients: Patients = NOBODY) -> list[Result]:
    """One result per file of the batch, in order: its Prediction, or the ImageError it raised."""
    decoded = [name for name, error in zip(batch.names, batch.errors, strict=True) if error is None]
    infos = [patients.of(name) for name in decoded]  # all None: predicted from the image alone
    found = iter(predictor.predict_arrays(batch.images, decoded, infos) if decoded else [])
    return [next(found) if error is None else ImageError(error) for error in batch.errors]


def result_rows(results: Sequence[Result], names: Sequence[str], model_id: str) -> list[dict[str, Any]]:
    """The output rows of a batch's results (see rows.py)."""
    return [
        prediction_row(result) if isinstance(result, Prediction) else error_row(name, str(result), model_id)
        for result, name in zip(results, names, strict=True)
    ]


def stream_predictions(
    predictor: Predictor,
    paths: Sequence[Path],
    batch_size: int = BATCH_SIZE,
    workers: int | None = None,
    patients: Patients = NOBODY,
) -> Iterator[tuple[list[str], list[Result]]]:
    """(names, results) a batch at a time, in the order of `paths`; decoding runs ahead on a pool.

    `workers` decoding threads (default: one per core) each hold at most one batch, so memory is
    bounded by (workers + 1) x batch_size images whatever len(paths) is.
    """
    patients.check(predictor)
    card = predictor.card
    workers = workers or os.cpu_count() or 1
    batches = (paths[start : start + batch_size] for start in range(0, len(paths), batch_size))
    pending: deque[Future[DecodedBatch]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:

        def submit_next() -> None:
            chunk = next(batches, None)
            if chunk is not None:
                names = [display_name(path) for path in chunk]
                pending.append(
                    pool.submit(decode_batch, chunk, names, card.image_size, card.fit, predictor.max_pixels)
                )

        for _ in range(workers + 1):
            submit_next()
        while pending:
            batch = pending.popleft().result()
            submit_next()
            yield batch.names, predict_batch(predictor, batch, patients)


@dataclass(frozen=True)
class JobSummary:
    """What a scoring job did: images scored now, failed now, skipped as already done, and seconds."""

    scored: int
    failed: int
    skipped: int
    seconds: float


def score_files(
    predictor: Predictor,
    paths: Sequence[Path],
    out: str | Path,
    resume: bool = False,
    batch_size: int = BATCH_SIZE,
    workers: int | None = None,
    patients: Patients = NOBODY,
    progress: Progress | None = None,
) -> JobSummary:
    """Score `paths` into `out` (.csv or .parquet) in chunks; with `resume`, skip images it already has.

    A file that fails to decode gets a row with its error and the job goes on. The output appears
    under its name only once every file has a row.
    """
    start = time.perf_counter()
    patients.check(predictor)  # before the output's parts folder exists
    with ScoreFile(out, predictor.card.model_id, resume) as scores:
        todo = [path for path in paths if not scores.has(str(path))]
        rows: list[dict[str, Any]] = []
        scored = failed = 0
        for names, results in stream_predictions(predictor, todo, batch_size, workers, patients):
            rows += result_rows(results, names, predictor.card.model_id)
            failed += sum(isinstance(result, ImageError) for result in results)
            scored += len(results)
            if len(rows) >= CHUNK_ROWS:
                scores.write(rows)
                rows = []
            if progress is not None:
                progress(scored, len(todo))
        scores.write(rows)
        scores.finish()
    return JobSummary(scored - failed, failed, len(paths) - len(todo), time.perf_counter() - start)
