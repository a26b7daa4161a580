"""`create_app(predictor)`: the FastAPI app: probe routes, model card, predict, Grad-CAM and the page.

Decoding and inference run in worker threads behind one CapacityLimiter, so at most
`max_inferences` run at once however many requests wait, and the event loop keeps answering probes.
Each prediction reports its decode and inference time in a Server-Timing header.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from time import perf_counter
from typing import Annotated, Any

import anyio
import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from skinpamper import NOT_A_DIAGNOSIS, __version__
from skinpamper.classes import CLASSES, CODES
from skinpamper.errors import ImageError, SkinPamperError
from skinpamper.scoring.metadata_model import MAX_AGE, PatientInfo
from skinpamper.serving.predict import Prediction, Predictor
from skinpamper.serving.service.docs import add_docs_routes
from skinpamper.serving.service.schemas import ErrorBody, ModelInfo, PredictResponse, Status
from skinpamper.serving.service.settings import ServeSettings, load_settings
from skinpamper.serving.service.uploads import FIELD, Upload, check_images, read_uploads

CLASS_PATTERN = f"^({'|'.join(CODES)})$"
OVERLAY_SIZE = 224  # px: the Grad-CAM overlay is drawn at the model's input and enlarged to be seen
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": why}
    for code, why in (
        (400, "malformed multipart body"),
        (413, "request bytes, image count, or pixels of an image or of the request over the limit"),
        (415, "not multipart, or a part that is not a JPEG or PNG"),
        (422, "no image sent, or an image that cannot be decoded"),
    )
}


def _multipart_body(many: bool) -> dict[str, Any]:
    """The OpenAPI request body: the route reads it itself, so it is declared rather than inferred."""
    binary = {"type": "string", "format": "binary"}
    schema = {"type": "array", "items": binary, "minItems": 1} if many else binary
    content = {
        "multipart/form-data": {
            "schema": {"type": "object", "properties": {FIELD: schema}, "required": [FIELD]}
        }
    }
    return {"requestBody": {"required": True, "content": content}}


class PageFiles(StaticFiles):
    """The page's own files, with the page's security headers: /static/index.html is the page too."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(PAGE_HEADERS)
        return response


def create_app(predictor: Predictor, settings: ServeSettings | None = None) -> FastAPI:
    """The service for one loaded model; settings default to the SKINPAMPER_SERVE_* environment."""
    settings = settings or load_settings()
    # Grad-CAM needs gradients, so the Keras model; an ONNX export holds only the forward pass.
    gradcam = predictor.model is not None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The first inference allocates and tunes kernels (and Grad-CAM builds its two-output model):
        # do both before /readyz says yes.
        await anyio.to_thread.run_sync(_warm_up, predictor, gradcam)
        app.state.ready = True
        yield

    # FastAPIOffline mounts Swagger UI's and ReDoc's files; add_docs_routes serves their pages.
    app = FastAPIOffline(
        docs_url=None,
        redoc_url=None,
        title="Skin Pamper",
        version=__version__,
        description=NOT_A_DIAGNOSIS,
        lifespan=lifespan,
    )
    add_docs_routes(app)
    app.state.ready = False
    app.add_exception_handler(RequestValidationError, _validation_error)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"]
        )
    app.mount("/static", PageFiles(packages=[("skinpamper.serving.service", "static")]), name="static")
    limiter = anyio.CapacityLimiter(settings.max_inferences)
    _add_probe_routes(app, predictor, gradcam)
    _add_predict_route(app, predictor, settings, limiter)
    if gradcam:
        _add_explain_route(app, predictor, settings, limiter)
    return app


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A bad query parameter as one line in `detail`, like every other error the service returns.

    FastAPI's default body is a list of objects: it matches neither the declared ErrorBody nor the page.
    """
    error = exc.errors()[0]
    where = " ".join(str(part) for part in error["loc"])
    return JSONResponse({"detail": f"{where}: {error['msg']}"}, status_code=422)


def _warm_up(predictor: Predictor, gradcam: bool) -> None:
    size = predictor.card.image_size
    blank = np.zeros((1, size, size, 3), np.uint8)
    predictor.probabilities(blank)
    if gradcam:
        from skinpamper.evaluation.explain import gradcam as explain

        explain(predictor.model, blank)


def _add_probe_routes(app: FastAPI, predictor: Predictor, gradcam: bool) -> None:
    page = files("skinpamper.serving.service").joinpath("static/index.html").read_text(encoding="utf-8")

    # HEAD too: uptime monitors and load balancers probe with it.
    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page, headers=PAGE_HEADERS)

    @app.get("/healthz", response_model=Status)
    @app.head("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", response_model=Status, responses={503: {"model": Status}})
    @app.head("/readyz", include_in_schema=False)
    def readyz() -> Any:
        """The model is loaded and warmed up: send traffic."""
        if app.state.ready:
            return {"status": "ready"}
        return JSONResponse({"status": "starting"}, status_code=503)

    @app.get(
        "/v1/model/card",
        response_class=Response,
        responses={
            200: {"content": {"text/markdown": {}}, "description": "the model card (Markdown)"},
            404: {"model": ErrorBody, "description": "an export made before model cards"},
        },
    )
    def model_card() -> Response:
        """The model card: intended and out-of-scope use, data, metrics with intervals, subgroups,
        out-of-distribution behaviour, caveats; generated from the run's own files."""
        if predictor.card.model_card is None:
            raise HTTPException(404, "this export has no model card; export the run again to add one")
        return Response(predictor.card.model_card, media_type="text/markdown; charset=utf-8")

    @app.get("/v1/model", response_model=ModelInfo)
    def model_info() -> dict[str, Any]:
        """What is served: classes, input size and fit, calibration, and the run's test metrics."""
        card = predictor.card
        return {
            **card.to_dict(),
            "backend": predictor.backend,
            "classes": [{"code": c.code, "name": c.name, "malignant": c.malignant} for c in CLASSES],
            "calibrated": predictor.calibrated,
            "tta": predictor.tta,
            "gradcam": gradcam,
            "note": NOT_A_DIAGNOSIS,
        }


def _add_predict_route(
    app: FastAPI, predictor: Predictor, settings: ServeSettings, limiter: anyio.CapacityLimiter
) -> None:
    @app.post(
        "/v1/predict", response_model=PredictResponse, responses=ERRORS, openapi_extra=_multipart_body(True)
    )
    async def predict(
        request: Request,
        age: Annotated[
            float | None, Query(ge=0, le=MAX_AGE, allow_inf_nan=False, description="patient's age, years")
        ] = None,
        sex: Annotated[str | None, Query(max_length=40, description="e.g. female, male")] = None,
        site: Annotated[str | None, Query(max_length=40, description="body site, e.g. back, face")] = None,
    ) -> Response:
        """Class probabilities for one or several images (multipart field `files`, JPEG or PNG).

        With `age`, `sex` or `site` (one patient for every image sent) and a model whose training data
        recorded them, they are combined with each image; the model card lists the values it knows.
        """
        patient = PatientInfo(age, sex, site)
        try:
            predictor.patient_evidence([patient])
        except SkinPamperError as exc:
            raise HTTPException(422, str(exc)) from None
        uploads = await read_uploads(
            request, settings.max_upload_bytes, settings.max_files, settings.body_timeout
        )
        await anyio.to_thread.run_sync(
            check_images, uploads, settings.max_pixels, settings.max_request_pixels
        )
        patients = [patient] * len(uploads) if patient != PatientInfo() else []
        predictions, timing = await anyio.to_thread.run_sync(
            _predict, predictor, uploads, patients, limiter=limiter
        )
        body = {
            "model_id": predictor.card.model_id,
            "note": NOT_A_DIAGNOSIS,
            "predictions": [p.to_dict() for p in predictions],
        }
        # Plain JSON built from floats and strings: json.dumps takes 30 us where FastAPI's validation and
        # encoding of the same body take 170 us; the fuzz test still checks it against the schema.
        return Response(json.dumps(body), media_type="application/json", headers={"Server-Timing": timing})


def _predict(
    predictor: Predictor, uploads: list[Upload], patients: list[PatientInfo]
) -> tuple[list[Prediction], str]:
    start = perf_counter()
    images = np.stack([_decode(predictor, upload) for upload in uploads])
    decoded = perf_counter()
    predictions = predictor.predict_arrays(images, [upload.filename for upload in uploads], patients)
    done = perf_counter()
    return predictions, f"decode;dur={(decoded - start) * 1e3:.3f}, predict;dur={(done - decoded) * 1e3:.3f}"


def _decode(predictor: Predictor, upload: Upload) -> np.ndarray:
    try:
        return predictor.load_image(upload.data, upload.filename)
    except ImageError as exc:
        raise HTTPException(422, str(exc)) from None


def _add_explain_route(
    app: FastAPI, predictor: Predictor, settings: ServeSettings, limiter: anyio.CapacityLimiter
) -> None:
    @app.post(
        "/v1/explain",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}, "description": "Grad-CAM overlay (PNG)"}, **ERRORS},
        openapi_extra=_multipart_body(False),
    )
    async def explain(
        request: Request,
        class_code: Annotated[str | None, Query(alias="class", pattern=CLASS_PATTERN)] = None,
    ) -> Response:
        """Grad-CAM overlay of one image for `class` (default: the top class), on what the model saw."""
        uploads = await read_uploads(request, settings.max_upload_bytes, 1, settings.body_timeout)
        await anyio.to_thread.run_sync(
            check_images, uploads, settings.max_pixels, settings.max_request_pixels
        )
        index = None if class_code is None else CODES.index(class_code)
        png = await anyio.to_thread.run_sync(_overlay_png, predictor, uploads[0], index, limiter=limiter)
        return Response(png, media_type="image/png")


def _overlay_png(predictor: Predictor, upload: Upload, class_index: int | None) -> bytes:
    from skinpamper.evaluation.explain import gradcam, overlay_heatmap

    image = _decode(predictor, upload)
    heatmap = gradcam(predictor.model, image[None], class_index=class_index)[0]
    # Enlarge the image before blending (overlay_heatmap resizes the map to it), so the overlay is
    # smooth rather than 28 visible blocks.
    big = Image.fromarray(image).resize((OVERLAY_SIZE, OVERLAY_SIZE), Image.Resampling.LANCZOS)
    # The note travels inside the file (PNG's standard Disclaimer text), so a saved overlay keeps it.
    info = PngInfo()
    info.add_text("Disclaimer", NOT_A_DIAGNOSIS)
    buffer = io.BytesIO()
    Image.fromarray(overlay_heatmap(np.asarray(big), heatmap)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()
