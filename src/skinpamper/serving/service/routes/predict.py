"""POST /v1/predict: class probabilities for one or several uploaded images, with optional patient data.

Decoding runs in a worker thread behind the app's inference limiter, inference in the batch the
app's batcher puts the request in; the response's Server-Timing header reports the decode, the wait
for a batch and the batch's inference.
"""

from __future__ import annotations

import json
from time import perf_counter
from typing import Annotated

import anyio
import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request, Response

from skinpamper import NOT_A_DIAGNOSIS
from skinpamper.errors import SkinPamperError
from skinpamper.scoring.metadata_model import MAX_AGE, PatientInfo
from skinpamper.serving.predict import Predictor
from skinpamper.serving.service.dependencies import BatcherDep, LimiterDep, PredictorDep, SettingsDep
from skinpamper.serving.service.schemas import PredictResponse
from skinpamper.serving.service.uploads import (
    UPLOAD_ERRORS,
    Upload,
    check_images,
    decode,
    read_uploads,
    upload_body,
)

router = APIRouter()


@router.post(
    "/v1/predict", response_model=PredictResponse, responses=UPLOAD_ERRORS, openapi_extra=upload_body(True)
)
async def predict(
    request: Request,
    predictor: PredictorDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    batcher: BatcherDep,
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
    await anyio.to_thread.run_sync(check_images, uploads, settings.max_pixels, settings.max_request_pixels)
    patients = [patient] * len(uploads) if patient != PatientInfo() else None
    images, decode_ms = await anyio.to_thread.run_sync(_decode, predictor, uploads, limiter=limiter)
    predictions, timing = await batcher.predict(images, [u.filename for u in uploads], patients)
    timing = f"decode;dur={decode_ms:.3f}, {timing}"
    body = {
        "model_id": predictor.card.model_id,
        "note": NOT_A_DIAGNOSIS,
        "predictions": [p.to_dict() for p in predictions],
    }
    # Plain JSON built from floats and strings: json.dumps takes 30 us where FastAPI's validation and
    # encoding of the same body take 170 us; the fuzz test still checks it against the schema.
    return Response(json.dumps(body), media_type="application/json", headers={"Server-Timing": timing})


def _decode(predictor: Predictor, uploads: list[Upload]) -> tuple[np.ndarray, float]:
    """The uploads at the model's input size, as training saw its images, and the milliseconds it
    took (measured here, so that waiting for a slot is not counted as decoding)."""
    start = perf_counter()
    images = np.stack([decode(predictor, upload) for upload in uploads])
    return images, (perf_counter() - start) * 1e3
