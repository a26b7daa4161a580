"""Read multipart image uploads into memory, enforcing size, count, type and pixel limits.

Starlette's own form parser spools files over 1 MB to a temporary file; patient photos must never
touch the server's disk, so the body is parsed here, in memory, as it streams in: each chunk goes to
python-multipart's parser as it arrives, and the request is refused the moment a byte or part limit
is crossed, so a body of 200,000 tiny parts costs no more than its first few dozen. Types are judged
from the bytes (JPEG and PNG signatures), never from the file name or the declared type, and image
sizes from their headers, in a worker thread, before anything is decoded. The routes read the body
themselves, so its OpenAPI declaration and the errors reading it gives are declared here too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import HTTPException, Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from skinpamper.errors import ImageError, ImageTooLargeError
from skinpamper.imaging import read_size
from skinpamper.serving.service.schemas import ErrorBody

if TYPE_CHECKING:
    import numpy as np

    from skinpamper.serving.predict import Predictor

FIELD = "files"
SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}
# Parts of other fields (a form's submit button, say) are skipped, but each costs parsing: a few only.
MAX_OTHER_PARTS = 8
UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": why}
    for code, why in (
        (400, "malformed multipart body"),
        (413, "request bytes, image count, or pixels of an image or of the request over the limit"),
        (415, "not multipart, or a part that is not a JPEG or PNG"),
        (422, "no image sent, or an image that cannot be decoded"),
    )
}


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


@dataclass
class _Collector:
    """python-multipart callbacks that keep the parts of field `files` and count every part."""

    max_files: int
    uploads: list[Upload] = field(default_factory=list)
    others: int = 0
    headers: dict[str, bytes] = field(default_factory=dict)
    header: list[bytes] = field(default_factory=lambda: [b"", b""])
    data: list[bytes] | None = None  # the current part's data when it belongs to `files`
    filename: str = ""

    def callbacks(self) -> dict[str, object]:
        return {
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _header_field(self, buffer: bytes, start: int, end: int) -> None:
        self.header[0] += buffer[start:end]

    def _header_value(self, buffer: bytes, start: int, end: int) -> None:
        self.header[1] += buffer[start:end]

    def _header_end(self) -> None:
        self.headers[self.header[0].decode("latin-1").lower()] = self.header[1]
        self.header[:] = [b"", b""]

    def _headers_finished(self) -> None:
        """Count the part as soon as its headers say which field it is, before its data is read."""
        _, options = parse_options_header(self.headers.get("content-disposition", b""))
        self.headers.clear()
        if options.get(b"name") != FIELD.encode():
            self.others += 1
            if self.others > MAX_OTHER_PARTS:
                raise HTTPException(413, f"more than {MAX_OTHER_PARTS} form fields other than {FIELD!r}")
            return
        if len(self.uploads) >= self.max_files:
            raise HTTPException(
                413, f"more than {self.max_files} images in one request; the limit is {self.max_files}"
            )
        name = options.get(b"filename", b"").decode("utf-8", "replace")
        self.filename = name or f"image {len(self.uploads) + 1}"
        self.data = []

    def _part_data(self, buffer: bytes, start: int, end: int) -> None:
        if self.data is not None:
            self.data.append(buffer[start:end])

    def _part_end(self) -> None:
        if self.data is not None:
            self.uploads.append(Upload(self.filename, b"".join(self.data)))
        self.data = None


async def _chunks(request: Request, timeout: float) -> AsyncIterator[bytes]:
    """The body as it arrives; 408, and the connection closed, when nothing comes for `timeout` seconds.

    nginx's client_body_timeout: the wait between two reads is bounded, not the whole body, so a slow
    upload still goes through while a stalled one frees its connection.
    """
    stream = request.stream()
    while True:
        try:
            with anyio.fail_after(timeout):
                chunk = await anext(stream)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise HTTPException(
                408, f"no body bytes for {timeout:g} s; send the request again", {"Connection": "close"}
            ) from None
        yield chunk


async def read_uploads(request: Request, max_bytes: int, max_files: int, body_timeout: float) -> list[Upload]:
    """The parts of field `files`; 413 over max_bytes or max_files, 415 if not multipart, 400 if malformed,
    408 when the body stalls for `body_timeout` seconds."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise HTTPException(415, f"send multipart/form-data with one or more images in field {FIELD!r}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, f"request of {int(declared):,} bytes; the limit is {max_bytes:,}")
    collector = _Collector(max_files)
    total = 0
    try:
        parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
        async for chunk in _chunks(request, body_timeout):
            total += len(chunk)
            if total > max_bytes:  # a client may send more than it declared, or no length at all
                raise HTTPException(413, f"request over {max_bytes:,} bytes")
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:  # a malformed body, or a boundary longer than python-multipart takes
        raise HTTPException(400, f"malformed multipart body ({exc})") from None
    except ClientDisconnect:  # nobody is left to read an answer; end the request without a traceback
        raise HTTPException(400, "the client disconnected before the body was complete") from None
    if not collector.uploads:
        raise HTTPException(422, f"no image in field {FIELD!r}")
    return collector.uploads


def check_images(uploads: list[Upload], max_pixels: int, max_request_pixels: int) -> None:
    """415 unless every upload is a JPEG or PNG; 413 over the pixel limits; 422 for an unreadable header.

    Sizes come from the headers alone. Run it in a worker thread: a PNG's header can hold many
    thousands of chunks, and Pillow walks them in Python.
    """
    total = 0
    for upload in uploads:
        if not any(upload.data.startswith(signature) for signature in SIGNATURES):
            raise HTTPException(415, f"{upload.filename}: not a JPEG or PNG image (judged by its content)")
        try:
            width, height = read_size(upload.data, upload.filename)
        except ImageTooLargeError as exc:  # over Pillow's own bomb limit, far above any sane max_pixels
            raise HTTPException(413, str(exc)) from None
        except ImageError as exc:
            raise HTTPException(422, str(exc)) from None
        pixels = width * height
        if pixels > max_pixels:
            raise HTTPException(
                413, f"{upload.filename}: {width}x{height} = {pixels:,} pixels; the limit is {max_pixels:,}"
            )
        total += pixels
    if total > max_request_pixels:
        raise HTTPException(
            413,
            f"{len(uploads)} images of {total:,} pixels in all; the limit per request is "
            f"{max_request_pixels:,} (send fewer or smaller images per request)",
        )


def decode(predictor: Predictor, upload: Upload) -> np.ndarray:
    """The upload's pixels as the predictor's model takes them; 422 when the image cannot be decoded."""
    try:
        return predictor.load_image(upload.data, upload.filename)
    except ImageError as exc:
        raise HTTPException(422, str(exc)) from None


def upload_body(many: bool) -> dict[str, Any]:
    """The OpenAPI request body: the route reads it itself, so it is declared rather than inferred."""
    binary = {"type": "string", "format": "binary"}
    schema = {"type": "array", "items": binary, "minItems": 1} if many else binary
    content = {
        "multipart/form-data": {
            "schema": {"type": "object", "properties": {FIELD: schema}, "required": [FIELD]}
        }
    }
    return {"requestBody": {"required": True, "content": content}}
