"""/docs and /redoc: Swagger UI and ReDoc from fastapi-offline's files, with the page's security headers.

Both render on a machine without internet access (FastAPI's own pages load them from a CDN). Their
Content-Security-Policy is the page's, plus what the two libraries need: Swagger UI's one inline
script, allowed by its hash rather than by allowing every inline script; inline styles, which both
set on elements as they render; data: images and blob: workers (ReDoc's search).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

OPENAPI = "/openapi.json"  # FastAPI's default
STATIC = "/static-offline-docs"  # where FastAPIOffline mounts its copies of the two libraries
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def docs_headers(html: bytes) -> dict[str, str]:
    """The headers of a documentation page: its inline scripts are allowed by their SHA-256 alone."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    policy = (
        f"default-src 'self'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'"
    )
    return {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff"}


def add_docs_routes(app: FastAPI) -> None:
    """GET /docs and /redoc, rendered once: the service has no root path to fill in per request."""
    pages = {
        "/docs": get_swagger_ui_html(
            openapi_url=OPENAPI,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon.png",
            oauth2_redirect_url=None,
        ),
        "/redoc": get_redoc_html(
            openapi_url=OPENAPI,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC}/favicon.png",
            with_google_fonts=False,
        ),
    }
    for path, page in pages.items():
        app.add_api_route(path, _page(bytes(page.body)), methods=["GET"], include_in_schema=False)


def _page(body: bytes) -> Callable[[], HTMLResponse]:
    headers = docs_headers(body)

    def render() -> HTMLResponse:
        return HTMLResponse(body, headers=headers)

    return render
