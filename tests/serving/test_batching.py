"""Micro-batching in the service: requests that wait together share one inference, and each still gets
exactly the answer it would get alone (metadata included)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from service_helpers import encode, photo
from skinpamper.serving.predict import Predictor
from skinpamper.serving.service.app import create_app
from skinpamper.serving.service.settings import ServeSettings

PATIENT = {"age": 50, "sex": "male", "site": "back"}  # values the shared run's data holds


def requests() -> list[tuple[str, list[bytes], dict[str, object]]]:
    """Six requests of one image, the second with patient data, the fourth with two images."""
    jpegs = [encode(photo(seed=seed), "JPEG", quality=90) for seed in range(7)]
    images = [[jpegs[0]], [jpegs[1]], [jpegs[2]], [jpegs[3], jpegs[6]], [jpegs[4]], [jpegs[5]]]
    return [(name, data, PATIENT if name == "b" else {}) for name, data in zip("abcdef", images, strict=True)]


def post_files(name: str, images: list[bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (f"{name}{i}.jpg", data, "image/jpeg")) for i, data in enumerate(images)]


@pytest.mark.parametrize(("max_batch", "most_calls"), [(1, 6), (4, 3)])
def test_waiting_requests_share_an_inference_and_each_gets_its_own_answer(
    onnx_model: Path, max_batch: int, most_calls: int
) -> None:
    with TestClient(create_app(Predictor.load(onnx_model, threads=1), ServeSettings())) as client:
        alone = [
            client.post("/v1/predict", files=post_files(name, data), params=params).json()
            for name, data, params in requests()
        ]

    predictor = Predictor.load(onnx_model, threads=1)
    engine, sizes, lock = predictor.engine, [], threading.Lock()

    def slow_engine(images: np.ndarray) -> tuple[np.ndarray | None, ...]:
        with lock:
            sizes.append(len(images))
        time.sleep(0.2)  # long enough for every other request to be waiting when a batch forms
        return engine(images)

    predictor.chain = dataclasses.replace(predictor.chain, engine=slow_engine)
    app = create_app(predictor, ServeSettings(max_inferences=1, max_batch=max_batch))

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            return await asyncio.gather(
                *(
                    http.post("/v1/predict", files=post_files(name, data), params=params)
                    for name, data, params in requests()
                )
            )

    together = asyncio.run(burst())
    # One slot, which decoding holds too: every request is decoded before the first batch forms, then
    # batches take them in order, a request's images always in one batch: seven images in at most
    # three calls of at most four (one a request without batching, its two images in one call).
    assert [r.status_code for r in together] == [200] * 6, together[0].text
    assert sum(sizes) == 7 and len(sizes) <= most_calls and max(sizes) == max(max_batch, 2), sizes
    for response, solo in zip(together, alone, strict=True):
        batch = re.search(r'batch of (\d+)"', response.headers["server-timing"])
        assert batch is not None and int(batch.group(1)) in sizes
        body = response.json()
        for got, expected in zip(body["predictions"], solo["predictions"], strict=True):
            assert got["image"] == expected["image"] and got["status"] == expected["status"]
            assert got["with_metadata"] == expected["with_metadata"]
            for code, p in expected["probabilities"].items():
                assert got["probabilities"][code] == pytest.approx(p, abs=1e-6)
    assert [p["with_metadata"] for p in together[1].json()["predictions"]] == [True]
