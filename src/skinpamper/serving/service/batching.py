"""Micro-batching: the images of requests that wait at the same time go through one inference.

One onnxruntime call on 8 images of Lite0 at 128 px costs 3.6 ms per image against 5.3 ms for one
image alone (`benchmarks/onnx_batch.py`), so under load it pays to score waiting requests together.
The batching is opportunistic, like Triton's dynamic batcher with no queue delay: each request waits
for an inference slot of the app's limiter, and the first to get one scores itself and every request
still waiting (up to `max_batch` images); a request scored that way stops waiting for a slot. An idle
service so answers each request at once, and only a busy one batches. It needs no background task,
so the app works the same with or without its start-up having run (an ASGI test transport).

A request's predictions are what it would get alone: the chain scores each image independently, and
zero metadata evidence (a request without patient data) leaves probabilities unchanged
(`scoring.metadata_model.fuse`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from time import perf_counter

import anyio
import numpy as np

from skinpamper.scoring.metadata_model import PatientInfo
from skinpamper.serving.predict import Prediction, Predictor


@dataclass(eq=False)
class _Job:
    """One request's decoded images, waiting for the batch that scores them."""

    images: np.ndarray
    names: list[str]
    patients: list[PatientInfo] | None
    done: anyio.Event = field(default_factory=anyio.Event)
    predictions: list[Prediction] = field(default_factory=list)
    error: Exception | None = None
    timing: str = ""
    submitted: float = field(default_factory=perf_counter)


class Batcher:
    """Scores requests' images in batches of at most `max_batch`, at most `limiter`'s slots at once."""

    def __init__(self, predictor: Predictor, limiter: anyio.CapacityLimiter, max_batch: int) -> None:
        self.predictor, self.limiter, self.max_batch = predictor, limiter, max_batch
        self._waiting: deque[_Job] = deque()  # requests no batch has taken yet, oldest first

    async def predict(
        self, images: np.ndarray, names: list[str], patients: list[PatientInfo] | None
    ) -> tuple[list[Prediction], str]:
        """The request's predictions, and a Server-Timing value: its wait for a batch and the
        inference of the batch it went in (with the batch's size)."""
        job = _Job(images, names, patients)
        self._waiting.append(job)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._lead, job)
                await job.done.wait()
                group.cancel_scope.cancel()  # scored in another request's batch: stop waiting for a slot
        finally:  # a client that went away before any batch took it: nobody scores it
            if job in self._waiting:
                self._waiting.remove(job)
        if job.error is not None:
            raise job.error
        return job.predictions, job.timing

    async def _lead(self, job: _Job) -> None:
        """Once a slot is free: score `job` and the requests waiting behind it, unless a batch
        already took it."""
        async with self.limiter:
            if job not in self._waiting:
                return
            batch = self._take(job)
            try:
                await anyio.to_thread.run_sync(_score, self.predictor, batch)
            except Exception as exc:  # each request of the batch answers with it; the service goes on
                for member in batch:
                    member.error = exc
            finally:
                for member in batch:
                    member.done.set()

    def _take(self, leader: _Job) -> list[_Job]:
        """`leader` and the oldest waiting requests after it, up to `max_batch` images."""
        self._waiting.remove(leader)
        batch, size = [leader], len(leader.images)
        while self._waiting and size + len(self._waiting[0].images) <= self.max_batch:
            batch.append(self._waiting.popleft())
            size += len(batch[-1].images)
        return batch


def _score(predictor: Predictor, batch: list[_Job]) -> None:
    """One chain call for the whole batch, split back into each request's predictions."""
    start = perf_counter()
    images = np.concatenate([job.images for job in batch])
    names = [name for job in batch for name in job.names]
    patients: list[PatientInfo | None] = []
    if any(job.patients for job in batch):
        patients = [p for job in batch for p in (job.patients or [None] * len(job.images))]
    predictions = predictor.predict_arrays(images, names, patients)
    took = (perf_counter() - start) * 1e3
    for job in batch:
        job.predictions, predictions = predictions[: len(job.images)], predictions[len(job.images) :]
        waited = (start - job.submitted) * 1e3
        job.timing = f'queue;dur={waited:.3f}, predict;dur={took:.3f};desc="batch of {len(images)}"'
