"""POST /v1/predict: class probabilities for one or several uploaded images, with optional patient data.

Decoding and inference run in a worker thread behind the app's inference limiter; the response's
Server-Timing header reports the time each took.
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
from skinpamper.serving.predict import Prediction, Predictor
from skinpamper.serving.service.dependencies import LimiterDep, PredictorDep, SettingsDep
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
    patients = [patient] * len(uploads) if patient != PatientInfo() else []
    predictions, timing = await anyio.to_thread.run_sync(
        _predict_timed, predictor, uploads, patients, limiter=limiter
    )
    body = {
        "model_id": predictor.card.model_id,
        "note": NOT_A_DIAGNOSIS,
        "predictions": [p.to_dict() for p in predictions],
    }
    # Plain JSON built from floats and strings: json.dumps takes 30 us where FastAPI's validation and
    # encoding of the same body take 170 us; the fuzz test still checks it against the schema.
    return Response(json.dumps(body), media_type="application/json", headers={"Server-Timing": timing})


def _predict_timed(
    predictor: Predictor, uploads: list[Upload], patients: list[PatientInfo]
) -> tuple[list[Prediction], str]:
    """The predictions and their Server-Timing value: decode and inference, in milliseconds."""
    start = perf_counter()
    images = np.stack([decode(predictor, upload) for upload in uploads])
    decoded = perf_counter()
    predictions = predictor.predict_arrays(images, [upload.filename for upload in uploads], patients)
    done = perf_counter()
    return predictions, f"decode;dur={(decoded - start) * 1e3:.3f}, predict;dur={(done - decoded) * 1e3:.3f}"
