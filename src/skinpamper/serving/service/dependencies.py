"""What a route needs from the app it runs in, declared as FastAPI dependencies.

`create_app` puts the predictor, the settings, the inference limiter and the batcher that shares it
on `app.state` once; a route asks for them as parameters (`predictor: PredictorDep`), so the route
modules hold no app of their own and a test can replace any of them through
`app.dependency_overrides`. The getters are coroutines
because FastAPI runs plain-function dependencies in its thread pool: reading an attribute is not
worth a thread hop on every request, probes included.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import Depends, FastAPI, Request

from skinpamper.serving.predict import Predictor
from skinpamper.serving.service.batching import Batcher
from skinpamper.serving.service.settings import ServeSettings


def attach(app: FastAPI, predictor: Predictor, settings: ServeSettings) -> None:
    """Give `app` what its routes depend on; not ready until the warm-up says so."""
    app.state.predictor = predictor
    app.state.settings = settings
    # One limiter for the whole app: at most max_inferences run at once however many requests wait.
    app.state.limiter = anyio.CapacityLimiter(settings.max_inferences)
    app.state.batcher = Batcher(predictor, app.state.limiter, settings.max_batch)
    app.state.ready = False


async def get_predictor(request: Request) -> Predictor:
    return request.app.state.predictor


async def get_settings(request: Request) -> ServeSettings:
    return request.app.state.settings


async def get_limiter(request: Request) -> anyio.CapacityLimiter:
    return request.app.state.limiter


async def get_batcher(request: Request) -> Batcher:
    return request.app.state.batcher


PredictorDep = Annotated[Predictor, Depends(get_predictor)]
SettingsDep = Annotated[ServeSettings, Depends(get_settings)]
LimiterDep = Annotated[anyio.CapacityLimiter, Depends(get_limiter)]
BatcherDep = Annotated[Batcher, Depends(get_batcher)]
