"""Score an archive across machines with Ray Data, the engine made for batch inference in Python.

The pipeline is Ray's own: list the files (or read them from object storage with
`read_binary_files`), `map_batches` decoding with this package's `decode_batch` (training's imaging
code, so preprocessing cannot drift), then `map_batches` over a pool of actors that each hold the ONNX
model, with onnxruntime's intra-op threads equal to the CPUs Ray gives the actor. Rows come back to
the driver in order and go into the same chunked, resumable `ScoreFile` as the local engine, so the
output lives where the user asked for it (it needs no shared folder) and both engines write the
same rows. Only ONNX exports are scored here: the .onnx file is what ships to workers, without Keras.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from skinpamper.errors import ConfigError
from skinpamper.serving.batch import (
    BATCH_SIZE,
    CHUNK_ROWS,
    NOBODY,
    DecodedBatch,
    JobSummary,
    Patients,
    Progress,
    decode_batch,
    predict_batch,
    result_rows,
)
from skinpamper.serving.predict import IMAGE_SUFFIXES, Predictor
from skinpamper.serving.rows import ERROR
from skinpamper.serving.score_file import ScoreFile

RAY_EXTRA = "pip install 'skinpamper[ray]'"
# Ray CPUs reserved per stage. Ray fuses decoding into the scoring actors (both ask the same), and half a
# CPU each leaves slots for Ray Data's own listing and reading tasks: reserving whole CPUs starved them
# (measured on 2 cores, 4,000 files, warm: 280 images/s with 1, 555 with 0.5, streaming 580).
STAGE_CPUS = 0.5
CONNECT_SECONDS = 5.0  # ray.init retries an unreachable address for minutes; probe it first


def is_uri(source: str) -> bool:
    """Whether a source names object storage or a Ray filesystem (s3://, gs://, local://, file://)."""
    return "://" in source


def check_ray_job(model: str | Path) -> None:
    """Refuse, before anything loads, a job Ray cannot run: no Ray installed, or not an ONNX model."""
    try:
        import ray  # noqa: F401  (imported here so that a missing extra is said before any work)
    except ImportError:
        raise ConfigError(f"--engine ray needs Ray, which is not installed: {RAY_EXTRA}") from None
    if Path(model).suffix.lower() != ".onnx":
        raise ConfigError(
            f"{model}: --engine ray scores ONNX exports only (Ray ships the .onnx file to its workers); "
            f"export the run first: skinpamper export {model} --format onnx"
        )


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Join the cluster at `address`, or start Ray on this machine (all its cores, no dashboard).

    A session the caller already started is used as it is and left running (when no address is given).
    """
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--engine ray needs Ray, which is not installed: {RAY_EXTRA}") from None
    if ray.is_initialized() and address is None:
        yield ray
        return
    if address is not None:
        _probe(address)
    try:
        ray.init(
            address=address or "local",  # a new Ray here, never a cluster some other job left running
            num_cpus=None if address else (num_cpus or os.cpu_count()),
            include_dashboard=False if address is None else None,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    except (ConnectionError, RuntimeError) as exc:
        raise ConfigError(f"--address {address}: cannot join a Ray cluster ({_first_line(exc)})") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def score_with_ray(
    model: str | Path,
    sources: Sequence[str | Path],
    out: str | Path,
    resume: bool = False,
    tta: bool = False,
    batch_size: int = BATCH_SIZE,
    cpus_per_actor: int = 1,
    patients: Patients = NOBODY,
    progress: Progress | None = None,
) -> JobSummary:
    """Score files (local paths on storage every node sees, or URIs Ray Data reads) into `out`.

    Needs a Ray session (see `ray_session`). Rows, resume and errors behave as in `score_files`.
    One actor per `cpus_per_actor` cores of the cluster, each running onnxruntime on that many threads
    (it reserves only STAGE_CPUS of Ray's CPUs, so Ray Data's own tasks keep room beside it).
    """
    import ray

    start = time.perf_counter()
    model = Path(model)
    check_ray_job(model)
    predictor = Predictor.load(model, tta=tta)  # refuses a bad model before any worker starts
    patients.check(predictor)
    card = predictor.card
    with ScoreFile(out, card.model_id, resume) as scores:
        uris = [str(s) for s in sources if is_uri(str(s))]
        local = [str(s) for s in sources if not is_uri(str(s))]
        todo = [name for name in local if not scores.has(name)]
        # Datasets copy the context when made, so set it first.
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # rows in the order given, as the local engine
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # its INFO plan and WARNING "bars disabled"
        context.enable_progress_bars = False  # the caller's progress callback reports instead
        datasets = []
        if todo:
            datasets.append(ray.data.from_items([{"image": name} for name in todo]))
        if uris:
            extensions = [suffix.lstrip(".") for suffix in IMAGE_SUFFIXES]
            read = ray.data.read_binary_files(uris, include_paths=True, file_extensions=extensions)
            datasets.append(read.map_batches(_name_uris, fn_kwargs={"scheme": urlsplit(uris[0]).scheme}))
        if not datasets:
            scores.finish()
            return JobSummary(0, 0, len(local), time.perf_counter() - start)
        dataset = datasets[0].union(*datasets[1:]) if len(datasets) > 1 else datasets[0]
        decode = {"size": card.image_size, "fit": card.fit, "max_pixels": predictor.max_pixels}
        decode["skip"] = scores.done if uris else frozenset()
        # Ray fuses the decoding into the actors (no copy between them), so each actor decodes and scores
        # its own blocks: as many actors as the cluster has room for.
        actors = max(1, int(ray.cluster_resources().get("CPU", 1)) // cpus_per_actor)
        decoded = dataset.map_batches(
            _decode_block, fn_kwargs=decode, batch_size=batch_size, num_cpus=STAGE_CPUS
        )
        rows = decoded.map_batches(
            OnnxScorer,
            fn_constructor_kwargs={
                "model": model.read_bytes(),
                "tta": tta,
                "threads": cpus_per_actor,
                "patients": patients,
            },
            batch_size=batch_size,
            compute=ray.data.ActorPoolStrategy(min_size=actors, max_size=actors),  # all start at once
            num_cpus=STAGE_CPUS,
            batch_format="numpy",
        )
        scored = failed = 0
        pending: list[dict[str, Any]] = []
        # batch_size=None: each block as the actor made it, so blocks of different columns (a block of
        # broken files has no probabilities) are never concatenated by Ray; ScoreFile aligns them.
        for frame in rows.iter_batches(batch_size=None, batch_format="pandas"):
            pending += frame.to_dict("records")
            scored += len(frame)
            failed += int(frame[ERROR].notna().sum())
            if len(pending) >= CHUNK_ROWS:
                scores.write(pending)
                pending = []
            if progress is not None:
                progress(scored, scored if uris else len(todo))
        scores.write(pending)
        scores.finish()
    skipped = (
        len(local) - len(todo) + sum(name.startswith(tuple(uris)) for name in scores.done)
        if uris
        else len(local) - len(todo)
    )
    return JobSummary(scored - failed, failed, skipped, time.perf_counter() - start)


class OnnxScorer:
    """A Ray actor holding the model: decoded blocks in, one output row per file out."""

    def __init__(self, model: bytes, tta: bool, threads: int, patients: Patients) -> None:
        with tempfile.NamedTemporaryFile(suffix=".onnx", delete=False) as handle:
            handle.write(model)  # the driver's file may not exist on this node
        try:
            self.predictor = Predictor.load(handle.name, tta=tta, threads=threads)
        finally:
            Path(handle.name).unlink()
        self.patients = patients

    def __call__(self, batch: dict[str, np.ndarray]) -> pd.DataFrame:
        errors = [error or None for error in batch[ERROR].tolist()]
        decoded = DecodedBatch(batch["image"].tolist(), batch["pixels"][[e is None for e in errors]], errors)
        results = predict_batch(self.predictor, decoded, self.patients)
        return pd.DataFrame(result_rows(results, decoded.names, self.predictor.card.model_id))


def _decode_block(
    batch: dict[str, np.ndarray], size: int, fit: str, max_pixels: int, skip: frozenset[str] | set[str]
) -> dict[str, np.ndarray]:
    """Decode a block of files (by path, or from the bytes Ray read); failed ones keep a blank image."""
    keep = [i for i, name in enumerate(batch["image"].tolist()) if name not in skip]
    names = [str(batch["image"][i]) for i in keep]
    sources = [batch["bytes"][i] for i in keep] if "bytes" in batch else [Path(n) for n in names]
    decoded = decode_batch(sources, names, size, fit, max_pixels)
    pixels = np.zeros((len(names), size, size, 3), np.uint8)
    pixels[[error is None for error in decoded.errors]] = decoded.images
    return {
        "image": np.array(names, dtype=object),
        "pixels": pixels,
        ERROR: np.array([error or "" for error in decoded.errors], dtype=object),
    }


def _name_uris(batch: dict[str, np.ndarray], scheme: str) -> dict[str, np.ndarray]:
    """Ray reports object-storage paths without their scheme; put it back so ids stay URIs."""
    names = [f"{scheme}://{path}" for path in batch["path"].tolist()]
    return {"image": np.array(names, dtype=object), "bytes": batch["bytes"]}


def _probe(address: str) -> None:
    """Fail in seconds, with one line, when nothing listens at a cluster address."""
    if address == "auto":
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    if parts.hostname is None or parts.port is None:
        raise ConfigError(f"--address {address}: expected HOST:PORT, e.g. 10.0.0.5:6379")
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        raise ConfigError(f"--address {address}: no Ray cluster answers there ({exc})") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
