"""Read multipart image uploads into memory, enforcing size, count, type and pixel limits.

Starlette's own form parser spools files over 1 MB to a temporary file; patient photos must never
touch the server's disk, so the body is read here with a byte limit and parsed in memory. Types are
judged from the bytes (JPEG and PNG signatures), never from the file name or the declared type.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from fastapi import HTTPException, Request
from PIL import Image, UnidentifiedImageError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

FIELD = "files"
SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


async def read_uploads(request: Request, max_bytes: int, max_files: int) -> list[Upload]:
    """The parts of field `files`; 413 over max_bytes or max_files, 415 if not multipart, 400 if malformed."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise HTTPException(415, f"send multipart/form-data with one or more images in field {FIELD!r}")
    body = await _read_body(request, max_bytes)
    uploads = _parse_multipart(body, boundary)
    if not uploads:
        raise HTTPException(422, f"no image in field {FIELD!r}")
    if len(uploads) > max_files:
        raise HTTPException(413, f"{len(uploads)} images in one request; the limit is {max_files}")
    return uploads


def check_image(upload: Upload, max_pixels: int) -> None:
    """415 unless the bytes are a JPEG or PNG; 413 over max_pixels, read from the header alone."""
    if not any(upload.data.startswith(signature) for signature in SIGNATURES):
        raise HTTPException(415, f"{upload.filename}: not a JPEG or PNG image (judged by its content)")
    try:
        width, height = Image.open(io.BytesIO(upload.data)).size
    except Image.DecompressionBombError as exc:  # Pillow's own ceiling, far above any sane max_pixels
        raise HTTPException(413, f"{upload.filename}: {exc}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise HTTPException(422, f"{upload.filename}: unreadable image header ({exc})") from None
    if width * height > max_pixels:
        raise HTTPException(
            413,
            f"{upload.filename}: {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,}",
        )


async def _read_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, f"request of {int(declared):,} bytes; the limit is {max_bytes:,}")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_bytes:  # a client may send more than it declared, or no length at all
            raise HTTPException(413, f"request over {max_bytes:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_multipart(body: bytes, boundary: bytes) -> list[Upload]:
    uploads: list[Upload] = []
    part: dict[str, bytes] = {}
    header: list[bytes] = [b"", b""]
    data: list[bytes] = []

    def on_header_field(buffer: bytes, start: int, end: int) -> None:
        header[0] += buffer[start:end]

    def on_header_value(buffer: bytes, start: int, end: int) -> None:
        header[1] += buffer[start:end]

    def on_header_end() -> None:
        part[header[0].decode("latin-1").lower()] = header[1]
        header[:] = [b"", b""]

    def on_part_data(buffer: bytes, start: int, end: int) -> None:
        data.append(buffer[start:end])

    def on_part_end() -> None:
        _, options = parse_options_header(part.get("content-disposition", b""))
        if options.get(b"name") == FIELD.encode():
            name = options.get(b"filename", b"").decode("utf-8", "replace") or f"image {len(uploads) + 1}"
            uploads.append(Upload(name, b"".join(data)))
        part.clear()
        data.clear()

    callbacks = {
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise HTTPException(400, f"malformed multipart body ({exc})") from None
    return uploads
