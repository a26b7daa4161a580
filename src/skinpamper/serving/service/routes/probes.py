"""/healthz and /readyz: what an orchestrator asks before it sends traffic, answered on GET and HEAD."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from skinpamper.serving.service.schemas import Status

router = APIRouter()


@router.get("/healthz", response_model=Status)
@router.head("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Status, responses={503: {"model": Status}})
@router.head("/readyz", include_in_schema=False)
def readyz(request: Request) -> Any:
    """The model is loaded and warmed up: send traffic."""
    if request.app.state.ready:
        return {"status": "ready"}
    return JSONResponse({"status": "starting"}, status_code=503)
