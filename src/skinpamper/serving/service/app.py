"""`create_app(predictor)`: the FastAPI app: probe routes, model card, predict, Grad-CAM and the page.

The routes live in `routes/`, one APIRouter each, and reach the predictor, the settings and the
inference limiter through `dependencies`. Decoding and inference run in worker threads behind one
CapacityLimiter, so at most `max_inferences` run at once however many requests wait, and the event
loop keeps answering probes; requests that wait together share an inference (`batching`). Each
prediction reports its decode, queue and inference time in a Server-Timing header.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from skinpamper import NOT_A_DIAGNOSIS, __version__
from skinpamper.serving.predict import Predictor
from skinpamper.serving.service.dependencies import attach
from skinpamper.serving.service.docs import add_docs_routes
from skinpamper.serving.service.routes import explain, model, page, predict, probes
from skinpamper.serving.service.settings import ServeSettings, load_settings


def create_app(predictor: Predictor, settings: ServeSettings | None = None) -> FastAPI:
    """The service for one loaded model; settings default to the SKINPAMPER_SERVE_* environment."""
    settings = settings or load_settings()
    # FastAPIOffline mounts Swagger UI's and ReDoc's files; add_docs_routes serves their pages.
    app = FastAPIOffline(
        docs_url=None,
        redoc_url=None,
        title="Skin Pamper",
        version=__version__,
        description=NOT_A_DIAGNOSIS,
        lifespan=_lifespan,
    )
    add_docs_routes(app)
    attach(app, predictor, settings)
    app.add_exception_handler(RequestValidationError, _validation_error)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"]
        )
    app.mount("/static", page.PageFiles(), name="static")
    for routes in (page, probes, model, predict):
        app.include_router(routes.router)
    if explain.can_explain(predictor):
        app.include_router(explain.router)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The first inference allocates and tunes kernels (and Grad-CAM builds its two-output model):
    # do both before /readyz says yes.
    await anyio.to_thread.run_sync(_warm_up, app.state.predictor)
    app.state.ready = True
    yield


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A bad query parameter as one line in `detail`, like every other error the service returns.

    FastAPI's default body is a list of objects: it matches neither the declared ErrorBody nor the page.
    """
    error = exc.errors()[0]
    where = " ".join(str(part) for part in error["loc"])
    return JSONResponse({"detail": f"{where}: {error['msg']}"}, status_code=422)


def _warm_up(predictor: Predictor) -> None:
    size = predictor.card.image_size
    blank = np.zeros((1, size, size, 3), np.uint8)
    predictor.probabilities(blank)
    if explain.can_explain(predictor):
        from skinpamper.evaluation.explain import gradcam

        gradcam(predictor.model, blank)
