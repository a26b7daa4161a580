"""A seeded corpus of damaged JPEG and PNG files, made from valid ones the way parser fuzzers make them.

Mutations: bit flips, byte overwrites with boundary values, truncations, deleted or repeated runs,
PNG chunks with a wrong length, type, CRC or IHDR size, and JPEG segments with a wrong length or
marker. The same seed gives the same corpus, so a failure can be replayed by its file name.
"""

from __future__ import annotations

import io
import random
import struct

import numpy as np
from PIL import Image

from helpers import make_images

SEED = 16
ORIENTATION = 0x0112  # the EXIF tag


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def valid_files() -> dict[str, bytes]:
    """Small valid images in the modes and options the decoder meets: EXIF, progressive, alpha, 16-bit."""
    photo = Image.fromarray(make_images(1, 15, 20, seed=SEED)[0])
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[0x010F] = "maker"
    wide = Image.fromarray((np.asarray(photo.convert("L"), dtype=np.uint16) * 257).astype(np.uint16))
    return {
        "plain.jpg": encode(photo, "JPEG", quality=90),
        "progressive.jpg": encode(photo, "JPEG", quality=90, progressive=True),
        "exif.jpg": encode(photo, "JPEG", exif=exif.tobytes()),
        "grey.jpg": encode(photo.convert("L"), "JPEG"),
        "cmyk.jpg": encode(photo.convert("CMYK"), "JPEG"),
        "plain.png": encode(photo, "PNG"),
        "rgba.png": encode(photo.convert("RGBA"), "PNG"),
        "palette.png": encode(photo.convert("P"), "PNG"),
        "exif.png": encode(photo, "PNG", exif=exif.tobytes()),
        "grey16.png": encode(wide, "PNG"),
        "bilevel.png": encode(photo.convert("1"), "PNG"),
    }


def _png_chunks(data: bytes) -> list[tuple[int, int]]:
    """(offset, data length) of each chunk after the 8-byte signature."""
    chunks, pos = [], 8
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        chunks.append((pos, length))
        pos += 12 + length
    return chunks


def _jpeg_markers(data: bytes) -> list[int]:
    return [i for i in range(len(data) - 3) if data[i] == 0xFF and data[i + 1] not in (0x00, 0xFF)]


def _corrupt_png_chunk(data: bytearray, rng: random.Random) -> str:
    pos, length = rng.choice(_png_chunks(bytes(data)))
    what = rng.randrange(4)
    if what == 0:
        lengths = (0, 1, length + 1, 2 * length + 7, 2**31 - 1, rng.randrange(2**32))
        data[pos : pos + 4] = struct.pack(">I", rng.choice(lengths))
        return "png-length"
    if what == 1:
        kinds = (b"IHDR", b"IDAT", b"IEND", b"eXIf", b"tEXt", b"zTXt", b"iCCP", b"PLTE", b"tRNS", b"acTL")
        data[pos + 4 : pos + 8] = rng.choice(kinds)
        return "png-type"
    if what == 2 and length >= 8:  # in IHDR these are width and height
        data[pos + 8 : pos + 16] = struct.pack(">II", rng.randrange(2**31), rng.randrange(2**31))
        return "png-fields"
    data[pos + 8 + length : pos + 12 + length] = b"\0\0\0\0"
    return "png-crc"


def _corrupt_jpeg_marker(data: bytearray, rng: random.Random) -> str:
    i = rng.choice(_jpeg_markers(bytes(data)))
    what = rng.randrange(3)
    if what == 0:
        data[i + 2 : i + 4] = struct.pack(">H", rng.randrange(65536))
        return "jpeg-length"
    if what == 1:
        data[i + 1] = rng.choice((0xC0, 0xC2, 0xC3, 0xC4, 0xCF, 0xD9, 0xDA, 0xDB, 0xDD, 0xE1))
        return "jpeg-marker"
    size = rng.randint(1, 10)
    data[i + 4 : i + 4 + size] = bytes(rng.randrange(256) for _ in range(size))
    return "jpeg-segment"


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """(kind, damaged copy of `data`)."""
    out = bytearray(data)
    kind = rng.randrange(6)
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        return "bitflip", bytes(out)
    if kind == 1:
        return "truncated", bytes(out[: rng.randrange(1, len(out))])
    if kind == 2:
        for _ in range(rng.randint(1, 4)):
            out[rng.randrange(len(out))] = rng.choice((0x00, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        return "overwrite", bytes(out)
    if kind == 3 and out.startswith(b"\x89PNG"):
        return _corrupt_png_chunk(out, rng), bytes(out)
    if kind == 4 and out.startswith(b"\xff\xd8"):
        return _corrupt_jpeg_marker(out, rng), bytes(out)
    start = rng.randrange(len(out))
    end = min(len(out), start + rng.randint(1, 64))
    if rng.random() < 0.5:
        del out[start:end]
        return "deleted", bytes(out)
    out[start:start] = out[start:end]
    return "repeated", bytes(out)


def damaged_files(count: int, seed: int = SEED) -> dict[str, bytes]:
    """`count` damaged files by name (`0042-bitflip-exif.jpg`), plus the issue's two reproductions."""
    rng = random.Random(seed)
    valid = list(valid_files().items())
    corpus = {
        # A PNG whose IHDR chunk is cut short (Pillow raises ValueError), and one with random EXIF
        # bytes (SyntaxError when the EXIF is read): both once escaped as tracebacks and 500s.
        "short.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\x05IHDR\x00\x00\x00\x10\x00",
        "badexif.png": encode(Image.new("RGB", (64, 48)), "PNG", exif=random.Random(seed).randbytes(200)),
    }
    for i in range(count - len(corpus)):
        name, data = rng.choice(valid)
        kind, damaged = mutate(data, rng)
        stem, suffix = name.rsplit(".", 1)
        corpus[f"{i:04d}-{kind}-{stem}.{suffix}"] = damaged
    return corpus
