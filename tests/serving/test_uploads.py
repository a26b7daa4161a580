"""Uploads under attack: damaged files, hostile multipart bodies and pixel-heavy requests, in process and
against `skinpamper serve` running on a loopback port, while /healthz must keep answering."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import HTTPException, Request
from fastapi.testclient import TestClient
from PIL import Image

from fuzz_corpus import damaged_files, encode, valid_files
from service_helpers import assert_probes_answered_fast
from skinpamper.errors import ConfigError
from skinpamper.serving.predict import Predictor
from skinpamper.serving.service.app import create_app
from skinpamper.serving.service.settings import ServeSettings, load_settings
from skinpamper.serving.service.uploads import read_uploads


@pytest.fixture(scope="module")
def client(onnx_model: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Predictor.load(onnx_model, threads=1), ServeSettings())) as client:
        yield client


def upload(*parts: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "application/octet-stream")) for name, data in parts]


def multipart(boundary: bytes, parts: list[tuple[bytes, bytes]]) -> bytes:
    """A body of (field name, data) parts, written out by hand so it can be as odd as needed."""
    chunks = [
        b'--%s\r\nContent-Disposition: form-data; name="%s"; filename="p.png"\r\n\r\n%s\r\n'
        % (boundary, name, data)
        for name, data in parts
    ]
    return b"".join(chunks) + b"--%s--\r\n" % boundary


def test_the_issues_damaged_pngs_get_a_clean_answer(client: TestClient) -> None:
    corpus = damaged_files(2)
    short = client.post("/v1/predict", files=upload(("short.png", corpus["short.png"])))
    assert short.status_code == 422, short.text
    assert short.json()["detail"] == "short.png: truncated or corrupt image (Truncated IHDR chunk)"
    # Damaged EXIF says nothing about orientation; the pixels decode, so the image is predicted.
    exif = client.post("/v1/predict", files=upload(("badexif.png", corpus["badexif.png"])))
    assert exif.status_code == 200, exif.text


def test_error_bodies_hold_no_heap_addresses(client: TestClient) -> None:
    response = client.post("/v1/predict", files=upload(("odd.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)))
    assert response.status_code == 422
    assert response.json()["detail"].startswith("odd.png: ") and " at 0x" not in response.text


def test_a_boundary_longer_than_the_parser_takes_is_400(client: TestClient) -> None:
    boundary = b"b" * 300
    body = multipart(boundary, [(b"files", encode(Image.new("RGB", (8, 8)), "PNG"))])
    response = client.post(
        "/v1/predict",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary.decode()}"},
    )
    assert response.status_code == 400 and "malformed multipart body" in response.json()["detail"]


@pytest.mark.parametrize("field", [b"files", b"other"])
def test_parts_are_counted_while_the_body_streams(field: bytes) -> None:
    part = b'--x\r\nContent-Disposition: form-data; name="%s"\r\n\r\nx\r\n' % field
    received = [0]

    async def receive() -> dict[str, object]:  # 100 chunks of 1,000 tiny parts each, on demand
        received[0] += 1
        return {"type": "http.request", "body": part * 1000, "more_body": received[0] < 100}

    headers = [(b"content-type", b"multipart/form-data; boundary=x")]
    request = Request({"type": "http", "method": "POST", "headers": headers}, receive)
    with pytest.raises(HTTPException) as refused:
        asyncio.run(read_uploads(request, 1 << 30, 16, 10.0))
    assert refused.value.status_code == 413
    assert received[0] == 1  # refused inside the first chunk, not after parsing all 100


def test_the_request_pixel_budget_is_checked_from_the_headers(onnx_model: Path) -> None:
    settings = ServeSettings(max_pixels=60 * 60, max_request_pixels=3 * 60 * 60)
    image = encode(Image.new("RGB", (60, 60)), "PNG")
    with TestClient(create_app(Predictor.load(onnx_model, threads=1), settings)) as client:
        three = client.post("/v1/predict", files=upload(*[(f"{i}.png", image) for i in range(3)]))
        assert three.status_code == 200
        four = client.post("/v1/predict", files=upload(*[(f"{i}.png", image) for i in range(4)]))
    assert four.status_code == 413
    assert four.json()["detail"].startswith(
        "4 images of 14,400 pixels in all; the limit per request is 10,800"
    )


def test_the_request_pixel_budget_is_a_checked_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKINPAMPER_SERVE_MAX_PIXELS", "4000000")
    monkeypatch.setenv("SKINPAMPER_SERVE_MAX_REQUEST_PIXELS", "5000000")
    assert load_settings().max_request_pixels == 5_000_000
    monkeypatch.setenv("SKINPAMPER_SERVE_MAX_PIXELS", "6000000")
    with pytest.raises(
        ConfigError, match=r"^SKINPAMPER_SERVE_MAX_REQUEST_PIXELS='5000000': .*below .*MAX_PIXELS"
    ):
        load_settings()
    monkeypatch.setenv("SKINPAMPER_SERVE_MAX_REQUEST_PIXELS", "0")
    with pytest.raises(
        ConfigError, match=r"^SKINPAMPER_SERVE_MAX_REQUEST_PIXELS='0': Input should be greater"
    ):
        load_settings()


@pytest.fixture(scope="module")
def live(onnx_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """`skinpamper serve MODEL --port 0` in its own process: (base URL, pid), once ready."""
    log = tmp_path_factory.mktemp("serve") / "stderr.txt"
    with log.open("w") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "skinpamper", "serve", str(onnx_model), "--port", "0"],
            stderr=stderr,
            env={**os.environ, "SKINPAMPER_SERVE_ONNX_THREADS": "1"},
        )
    try:
        deadline = time.monotonic() + 120
        while not (found := re.search(r"at (http://127\.0\.0\.1:\d+)/", log.read_text())):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        url = found.group(1)
        while httpx.get(f"{url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield url, server.pid
        assert server.poll() is None, f"the server died: {log.read_text()}"
        assert "Traceback" not in log.read_text(), log.read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)


def rss_mib(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def send_raw(url: str, head: bytes, body: list[bytes], pause: float = 0.0) -> bytes:
    """Send a request by hand, `body` piece by piece; the start of the answer (b"" if cut off)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        try:
            sock.sendall(head)
            for piece in body:
                sock.sendall(piece)
                time.sleep(pause)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server answered early and closed: read what it said
            pass
        answer = b""
        try:
            while piece := sock.recv(65536):  # "Connection: close": the server closes once it has answered
                answer += piece
        except OSError:
            pass
        return answer


def request_head(content_type: bytes, length: int | None) -> bytes:
    size = b"Content-Length: %d\r\n" % length if length is not None else b"Transfer-Encoding: chunked\r\n"
    return b"POST /v1/predict HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: %s\r\n%s\r\n" % (
        content_type,
        size,
    )


def hostile_requests() -> dict[str, tuple[bytes, list[bytes], float]]:
    """Attack name -> (request head, body pieces, pause between pieces), built before any is sent."""
    multipart_x = b"multipart/form-data; boundary=x"
    # The issue's freeze: ~240,000 tiny parts in 16 MB, sent 64 KB at a time.
    tiny = b'--x\r\nContent-Disposition: form-data; name="files"\r\n\r\nx\r\n' * 240_000
    long = multipart(b"b" * 300, [(b"files", b"\x89PNG")])
    # 16 images of 6,760,000 pixels: each one allowed, together over the 100,000,000 budget.
    heavy = multipart(b"x", [(b"files", encode(Image.new("RGBA", (2600, 2600)), "PNG"))] * 16)
    opening = b'--x\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n\r\n'
    megabyte = b"%x\r\n%s\r\n" % (1 << 20, b"\0" * (1 << 20))  # chunked: no Content-Length to refuse
    return {
        "many_parts": (request_head(multipart_x, len(tiny)), split(tiny), 0.0),
        "long_boundary": (
            request_head(b"multipart/form-data; boundary=" + b"b" * 300, len(long)),
            [long],
            0.0,
        ),
        # A part's opening, then 40 pieces of 100 bytes 50 ms apart, of a declared megabyte; then the
        # client gives up and closes its side: no one is left to answer, and no traceback is logged.
        "slow_body": (request_head(multipart_x, 1_000_000), [opening] + [b"y" * 100] * 40, 0.05),
        "oversize": (
            request_head(multipart_x, None),
            [b"%x\r\n%s\r\n" % (len(opening), opening)] + [megabyte] * 20,
            0.0,
        ),
        "pixel_heavy": (request_head(multipart_x, len(heavy)), split(heavy), 0.0),
    }


def split(body: bytes, size: int = 65536) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


@pytest.mark.slow
def test_hostile_clients_never_stall_the_probes(live: tuple[str, int]) -> None:
    url, _ = live
    requests = hostile_requests()
    attacks = ["many_parts"] * 4 + ["long_boundary", "slow_body", "oversize", "pixel_heavy"]
    answers: dict[int, bytes] = {}

    def attack(i: int, name: str) -> None:
        head, pieces, pause = requests[name]
        answers[i] = send_raw(url, head, pieces, pause)

    threads = [threading.Thread(target=attack, args=(i, name)) for i, name in enumerate(attacks)]
    latencies = []
    with httpx.Client(base_url=url) as probe:
        probe.get("/healthz")
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            start = time.perf_counter()
            assert probe.get("/healthz").status_code == 200
            latencies.append(time.perf_counter() - start)
            time.sleep(0.01)
    status = [int(answers[i].split(b" ", 2)[1]) if answers[i] else None for i in range(len(attacks))]
    assert dict(zip(attacks, status, strict=True)) == {
        "many_parts": 413,  # all four
        "long_boundary": 400,
        "slow_body": None,
        "oversize": 413,
        "pixel_heavy": 413,
    }
    assert status[:4] == [413] * 4
    assert b"request over 16,777,216 bytes" in answers[attacks.index("oversize")]
    assert b"in all; the limit per request is 100,000,000" in answers[attacks.index("pixel_heavy")]
    assert len(latencies) > 10
    assert_probes_answered_fast([seconds * 1e3 for seconds in latencies])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fuzzed_uploads_never_cause_a_server_error_nor_grow_memory(live: tuple[str, int]) -> None:
    url, pid = live
    corpus = damaged_files(1000)
    good = valid_files()
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        for name, data in list(good.items()) * 10:  # settle the allocator before measuring
            assert client.post("/v1/predict", files=upload((name, data))).status_code == 200
        before = rss_mib(pid)
        for name, data in corpus.items():
            response = client.post("/v1/predict", files=upload((name, data)))
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code in (200, 413, 415, 422), (name, response.text)
            if response.status_code != 200:
                assert response.json()["detail"].startswith(f"{name}: "), response.text
        for name, data in good.items():
            assert client.post("/v1/predict", files=upload((name, data))).status_code == 200
        after = rss_mib(pid)
    assert statuses.get(200, 0) > 100 and statuses.get(422, 0) > 500, statuses
    assert after - before < 20, f"RSS grew from {before:.0f} to {after:.0f} MiB over {len(corpus)} uploads"


@pytest.mark.slow
def test_memory_comes_back_after_pixel_heavy_requests(live: tuple[str, int]) -> None:
    url, pid = live
    image = encode(Image.new("RGBA", (4000, 4000), (10, 20, 30, 128)), "PNG")  # 16 MP in ~70 KB
    with httpx.Client(base_url=url, timeout=60) as client:
        client.get("/healthz")
        before = rss_mib(pid)
        response = client.post("/v1/predict", files=upload(*[(f"{i}.png", image) for i in range(4)]))
        assert response.status_code == 200, response.text
        after = rss_mib(pid)
    assert after - before < 40, f"RSS grew from {before:.0f} to {after:.0f} MiB and stayed"
