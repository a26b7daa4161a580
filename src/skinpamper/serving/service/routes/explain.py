"""POST /v1/explain: a Grad-CAM overlay of one uploaded image, served only for a Keras model.

Grad-CAM needs gradients, so the Keras model; an ONNX export holds only the forward pass, and an app
over one has no /v1/explain at all. Keras is imported inside the worker thread, on first use.
"""

from __future__ import annotations

import io
from typing import Annotated

import anyio
import numpy as np
from fastapi import APIRouter, Query, Request, Response
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from skinpamper import NOT_A_DIAGNOSIS
from skinpamper.classes import CODES
from skinpamper.serving.predict import Predictor
from skinpamper.serving.service.dependencies import LimiterDep, PredictorDep, SettingsDep
from skinpamper.serving.service.uploads import (
    UPLOAD_ERRORS,
    Upload,
    check_images,
    decode,
    read_uploads,
    upload_body,
)

CLASS_PATTERN = f"^({'|'.join(CODES)})$"
OVERLAY_SIZE = 224  # px: the Grad-CAM overlay is drawn at the model's input and enlarged to be seen

router = APIRouter()


def can_explain(predictor: Predictor) -> bool:
    """Whether the predictor holds the Keras model Grad-CAM differentiates."""
    return predictor.model is not None


@router.post(
    "/v1/explain",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "Grad-CAM overlay (PNG)"}, **UPLOAD_ERRORS},
    openapi_extra=upload_body(False),
)
async def explain(
    request: Request,
    predictor: PredictorDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    class_code: Annotated[str | None, Query(alias="class", pattern=CLASS_PATTERN)] = None,
) -> Response:
    """Grad-CAM overlay of one image for `class` (default: the top class), on what the model saw."""
    uploads = await read_uploads(request, settings.max_upload_bytes, 1, settings.body_timeout)
    await anyio.to_thread.run_sync(check_images, uploads, settings.max_pixels, settings.max_request_pixels)
    index = None if class_code is None else CODES.index(class_code)
    png = await anyio.to_thread.run_sync(_overlay_png, predictor, uploads[0], index, limiter=limiter)
    return Response(png, media_type="image/png")


def _overlay_png(predictor: Predictor, upload: Upload, class_index: int | None) -> bytes:
    from skinpamper.evaluation.explain import gradcam, overlay_heatmap

    image = decode(predictor, upload)
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
