"""Service limits, read from SKINPAMPER_SERVE_* environment variables and checked once at start-up.

A bad value stops the server before it binds a port, with a message naming the variable, rather
than surfacing later as odd behaviour under load.
"""

from __future__ import annotations

import os
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from skinpamper.errors import ConfigError
from skinpamper.imaging import MAX_PIXELS

ENV_PREFIX = "SKINPAMPER_SERVE_"


class ServeSettings(BaseSettings):
    """Every limit of the service; the defaults suit one CPU machine serving a 28-224 px model."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True)

    # A phone photo is 2-8 MB as JPEG; 16 MiB leaves room for a few per request.
    max_upload_bytes: int = Field(16 * 1024 * 1024, gt=0)
    max_files: int = Field(16, ge=1, le=256)  # images per request: bounds one request's decode time
    max_pixels: int = Field(MAX_PIXELS, gt=0)  # per image, checked from the header before decoding
    # All images of one request together, also from the headers: bounds one request's decode time
    # (~2.5 s for 100 megapixels of PNG on one core; eight 12-megapixel phone photos fit).
    max_request_pixels: int = Field(100_000_000, gt=0)
    # Inferences running at once; more only queue on the CPU and raise every request's latency.
    max_inferences: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64)
    # Images one inference may take from requests waiting together (serving.service.batching); 1: none.
    max_batch: int = Field(8, ge=1, le=256)
    onnx_threads: int = Field(1, ge=0, le=64)  # per inference; 1 lets max_inferences use the cores
    tta: bool = False  # 8 views cost 8x the time; off as in `predict` and Predictor.load
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()  # comma-separated; empty: CORS off
    # Connection limits in the manner of nginx, so that slow or stalled clients cost a bounded amount.
    # Request line and headers together (nginx's large_client_header_buffers is 4 x 8 KiB): 400 over it.
    max_header_bytes: int = Field(16 * 1024, ge=1024)
    # nginx's client_header_timeout: headers must arrive this soon after the connection opens or the
    # last response ends; idle connections are closed, half-sent headers answered 408.
    header_timeout: float = Field(10.0, gt=0)
    body_timeout: float = Field(10.0, gt=0)  # longest wait between two reads of a body (nginx's): 408
    keep_alive_timeout: int = Field(5, ge=1)  # seconds an idle connection stays open after a response
    # Open connections; beyond, each request (probes too) gets 503 at once rather than a slow answer.
    # 512 is nginx's worker_connections and far below a default 1,024 open-file limit.
    max_connections: int = Field(512, ge=2)
    shutdown_timeout: int = Field(5, ge=1)  # seconds SIGTERM waits for requests in flight, then ends them

    @field_validator("max_request_pixels")
    @classmethod
    def _check_request_pixels(cls, total: int, info: ValidationInfo) -> int:
        single = info.data.get("max_pixels")
        if single is not None and total < single:
            raise ValueError(
                f"below {ENV_PREFIX}MAX_PIXELS ({single:,}), so one image the per-image limit lets "
                "through would be refused; lower MAX_PIXELS too"
            )
        return total

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(origin.strip() for origin in value.split(",") if origin.strip())
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        # A browser sends its origin as scheme://host[:port]; one written with a path or a trailing
        # slash would never match it and CORS would fail silently, so it is refused here instead.
        for origin in origins:
            parts = urlsplit(origin)
            bare = not (parts.path or parts.query or parts.fragment)
            exact = parts.scheme in ("http", "https") and bool(parts.netloc) and bare
            if origin != "*" and not exact:
                raise ValueError(
                    f"{origin!r} is not * or an http(s):// origin without a path (e.g. https://clinic.example)"
                )
        return origins


def load_settings() -> ServeSettings:
    """Settings from the environment; ConfigError names the first bad variable and why."""
    try:
        return ServeSettings()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = f"{ENV_PREFIX}{error['loc'][0]}".upper() if error["loc"] else ENV_PREFIX + "*"
        raise ConfigError(f"{name}={error.get('input')!r}: {error['msg']}") from None
