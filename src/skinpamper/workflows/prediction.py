"""`score_archive`: score a folder or bucket of images into one file, on this machine or on Ray.

The engine is a choice of where the work runs, not of what it computes: both write the columns of
`serving.rows`, resume the same way and summarise the job alike, so the front end only picks one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from skinpamper.data.images import Progress
from skinpamper.errors import ConfigError

if TYPE_CHECKING:
    from skinpamper.serving.batch import JobSummary, Patients
    from skinpamper.serving.predict import Predictor

ENGINES = ("local", "ray")  # this machine's cores, or a Ray cluster (ONNX exports only)


def score_archive(
    model_path: str | Path,
    predictor: Predictor,
    sources: Sequence[str | Path],
    out: str | Path,
    *,
    resume: bool = False,
    engine: str = "local",
    address: str | None = None,
    batch_size: int = 64,
    patients: Patients | None = None,
    progress: Progress | None = None,
) -> JobSummary:
    """One row per image of `sources` into `out` (CSV or Parquet, in chunks as they come), scored by
    `predictor` here or, with `engine="ray"`, by `model_path` (an ONNX file) on the Ray cluster at
    `address` (default: one started here); `resume` skips the images `out` already holds."""
    from skinpamper.serving.batch import NOBODY, score_files

    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    patients = NOBODY if patients is None else patients
    if engine == "local":
        paths = [Path(source) for source in sources]
        return score_files(predictor, paths, out, resume, batch_size, patients=patients, progress=progress)
    from skinpamper.serving.ray_batch import ray_session, score_with_ray

    with ray_session(address):
        return score_with_ray(
            model_path, sources, out, resume, predictor.tta, batch_size, patients=patients, progress=progress
        )
