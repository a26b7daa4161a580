"""/v1/model and /v1/model/card: what is served, read from the loaded predictor."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response

from skinpamper import NOT_A_DIAGNOSIS
from skinpamper.classes import CLASSES
from skinpamper.serving.service.dependencies import PredictorDep
from skinpamper.serving.service.routes.explain import can_explain
from skinpamper.serving.service.schemas import ErrorBody, ModelInfo

router = APIRouter()


@router.get(
    "/v1/model/card",
    response_class=Response,
    responses={
        200: {"content": {"text/markdown": {}}, "description": "the model card (Markdown)"},
        404: {"model": ErrorBody, "description": "an export made before model cards"},
    },
)
def model_card(predictor: PredictorDep) -> Response:
    """The model card: intended and out-of-scope use, data, metrics with intervals, subgroups,
    out-of-distribution behaviour, caveats; generated from the run's own files."""
    if predictor.card.model_card is None:
        raise HTTPException(404, "this export has no model card; export the run again to add one")
    return Response(predictor.card.model_card, media_type="text/markdown; charset=utf-8")


@router.get("/v1/model", response_model=ModelInfo)
def model_info(predictor: PredictorDep) -> dict[str, Any]:
    """What is served: classes, input size and fit, calibration, and the run's test metrics."""
    card = predictor.card
    return {
        **card.to_dict(),
        "backend": predictor.backend,
        "classes": [{"code": c.code, "name": c.name, "malignant": c.malignant} for c in CLASSES],
        "calibrated": predictor.calibrated,
        "tta": predictor.tta,
        "gradcam": can_explain(predictor),
        "note": NOT_A_DIAGNOSIS,
    }
