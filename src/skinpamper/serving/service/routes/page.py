"""The page at `/` and its files under /static, both with the page's security headers."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

PACKAGE = "skinpamper.serving.service"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter()


class PageFiles(StaticFiles):
    """The page's own files, with the page's security headers: /static/index.html is the page too."""

    def __init__(self) -> None:
        super().__init__(packages=[(PACKAGE, "static")])

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(PAGE_HEADERS)
        return response


@cache
def _page() -> str:
    """Read once, on the first request: the page ships inside the package and never changes."""
    return files(PACKAGE).joinpath("static/index.html").read_text(encoding="utf-8")


# HEAD too: uptime monitors and load balancers probe with it.
@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
def index() -> HTMLResponse:
    return HTMLResponse(_page(), headers=PAGE_HEADERS)
