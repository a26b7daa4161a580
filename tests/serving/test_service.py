"""The HTTP service through FastAPI's TestClient: every route, every limit, and a schemathesis fuzz run."""

import asyncio
import dataclasses
import io
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from PIL import Image
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service_helpers import encode, photo, run_without_keras
from skinpamper import NOT_A_DIAGNOSIS
from skinpamper.classes import CODES
from skinpamper.errors import ConfigError
from skinpamper.scoring.metadata_model import PatientInfo
from skinpamper.serving.predict import Predictor
from skinpamper.serving.service.app import create_app
from skinpamper.serving.service.settings import ServeSettings, load_settings


@pytest.fixture(scope="module")
def predictor(onnx_model: Path) -> Predictor:
    return Predictor.load(onnx_model, threads=1)


@pytest.fixture
def jpeg_bytes() -> bytes:
    return encode(photo(), "JPEG", quality=95)


@pytest.fixture
def png_rgba_bytes() -> bytes:
    return encode(photo(seed=6).convert("RGBA"), "PNG")


@pytest.fixture
def client(predictor: Predictor):
    with TestClient(create_app(predictor, ServeSettings())) as client:  # `with` runs start-up
        yield client


def files(*parts: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "image/jpeg")) for name, data in parts]


def test_probes_and_readiness_after_warm_up(predictor: Predictor) -> None:
    app = create_app(predictor, ServeSettings())
    cold = TestClient(app)  # without `with`, start-up (the warm-up inference) has not run
    assert cold.get("/healthz").json() == {"status": "ok"}
    assert cold.get("/readyz").status_code == 503
    with TestClient(app) as warm:
        assert warm.get("/readyz").json() == {"status": "ready"}


def test_model_card(client: TestClient, predictor: Predictor) -> None:
    body = client.get("/v1/model").json()
    assert [c["code"] for c in body["classes"]] == list(CODES)
    assert body["image_size"] == 28 and body["fit"] == "squash" and body["backend"] == "onnx"
    assert body["model_id"] == predictor.card.model_id and body["calibrated"] is True
    assert body["gradcam"] is False  # an ONNX export holds no gradients
    assert {"balanced_accuracy", "per_class_recall"} <= body["metrics"].keys()
    assert body["note"] == NOT_A_DIAGNOSIS


def test_predict_one_and_several_images(
    client: TestClient, predictor: Predictor, jpeg_bytes: bytes, png_rgba_bytes: bytes
) -> None:
    response = client.post("/v1/predict", files=files(("lesion.jpg", jpeg_bytes)))
    assert response.status_code == 200, response.text
    body = response.json()
    (item,) = body["predictions"]
    (expected,) = predictor.predict([jpeg_bytes])
    assert item["image"] == "lesion.jpg" and item["top_class"] == expected.top_class
    np.testing.assert_allclose(list(item["probabilities"].values()), expected.probabilities, atol=1e-6)
    assert item["calibrated"] is True and item["model_id"] == body["model_id"] == predictor.card.model_id
    assert item["note"] == body["note"] == NOT_A_DIAGNOSIS
    assert "predict;dur=" in response.headers["server-timing"]

    several = client.post("/v1/predict", files=files(("a.jpg", jpeg_bytes), ("b.png", png_rgba_bytes)))
    assert [p["image"] for p in several.json()["predictions"]] == ["a.jpg", "b.png"]


def test_patient_metadata_rides_as_query_parameters(
    client: TestClient, predictor: Predictor, jpeg_bytes: bytes
) -> None:
    card = client.get("/v1/model").json()
    assert card["metadata_model"]["sites"] == ["back", "face"] and card["metadata_model"]["sexes"] == ["male"]
    patient = PatientInfo(age=70, sex="male", site="face")
    response = client.post("/v1/predict?age=70&sex=male&site=face", files=files(("a.jpg", jpeg_bytes)))
    assert response.status_code == 200, response.text
    (item,) = response.json()["predictions"]
    (expected,) = predictor.predict([jpeg_bytes], patients=[patient])
    assert item["with_metadata"] is True
    np.testing.assert_allclose(list(item["probabilities"].values()), expected.probabilities, atol=1e-6)
    bad_site = client.post("/v1/predict?site=elbow", files=files(("a.jpg", jpeg_bytes)))
    assert bad_site.status_code == 422 and "unknown site 'elbow'" in bad_site.json()["detail"]
    assert client.post("/v1/predict?age=-1", files=files(("a.jpg", jpeg_bytes))).status_code == 422


def test_content_is_sniffed_whatever_the_name_says(client: TestClient, jpeg_bytes: bytes) -> None:
    gif = encode(photo(), "GIF")
    for name, data in (("photo.jpg", b"MZ\x90\x00 not an image"), ("photo.png", gif)):
        response = client.post("/v1/predict", files=files((name, data)))
        assert response.status_code == 415 and f"{name}: not a JPEG or PNG" in response.json()["detail"]
    as_json = client.post("/v1/predict", json={"files": ["x"]})
    assert as_json.status_code == 415 and "multipart/form-data" in as_json.json()["detail"]
    renamed = client.post("/v1/predict", files=files(("notes.txt", jpeg_bytes)))
    assert renamed.status_code == 200  # a real JPEG is accepted whatever its name


def test_broken_and_missing_images_are_422(client: TestClient, jpeg_bytes: bytes) -> None:
    truncated = client.post("/v1/predict", files=files(("cut.jpg", jpeg_bytes[:300])))
    assert truncated.status_code == 422 and truncated.json()["detail"].startswith("cut.jpg: ")
    other_field = client.post("/v1/predict", files=[("image", ("a.jpg", jpeg_bytes, "image/jpeg"))])
    assert other_field.status_code == 422 and "no image in field 'files'" in other_field.json()["detail"]


def test_size_count_and_pixel_limits_are_413(predictor: Predictor, jpeg_bytes: bytes) -> None:
    settings = ServeSettings(max_upload_bytes=len(jpeg_bytes) + 1000, max_files=2, max_pixels=60 * 45)
    client = TestClient(create_app(predictor, settings))
    assert client.post("/v1/predict", files=files(("a.jpg", jpeg_bytes))).status_code == 200
    big = client.post("/v1/predict", files=files(("a.jpg", jpeg_bytes + b"\0" * 2000)))
    assert big.status_code == 413 and "the limit is" in big.json()["detail"]

    def chunks():  # no Content-Length: the limit must hold while streaming
        yield b"--x\r\n" + b"\0" * (len(jpeg_bytes) + 2000)

    streamed = client.post(
        "/v1/predict", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert streamed.status_code == 413

    tiny = encode(photo(8, 8), "PNG")
    many = client.post("/v1/predict", files=files(("1.png", tiny), ("2.png", tiny), ("3.png", tiny)))
    assert many.status_code == 413 and "more than 2 images in one request; the limit is 2" in many.text
    wide = client.post("/v1/predict", files=files(("wide.jpg", encode(photo(61, 45), "JPEG", quality=50))))
    assert wide.status_code == 413 and "wide.jpg: 61x45 = 2,745 pixels; the limit is 2,700" in wide.text


def test_decompression_bomb_is_refused_before_decoding(client: TestClient) -> None:
    bomb = encode(Image.new("1", (20_000, 20_000)), "PNG")  # 400 megapixels in a few tens of KB
    assert len(bomb) < 200_000
    response = client.post("/v1/predict", files=files(("bomb.png", bomb)))
    assert response.status_code == 413 and "pixels" in response.json()["detail"]


def test_uploads_never_touch_the_disk(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an upload was written to a temporary file")

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    noisy = encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (900, 900, 3), np.uint8)), "PNG")
    assert len(noisy) > 2_000_000  # well past Starlette's 1 MB spooling threshold
    assert client.post("/v1/predict", files=files(("big.png", noisy))).status_code == 200


@pytest.mark.parametrize("limit", [1, 3])
def test_concurrent_inferences_are_bounded(onnx_model: Path, jpeg_bytes: bytes, limit: int) -> None:
    predictor = Predictor.load(onnx_model)
    active, peak, lock = [0], [0], threading.Lock()
    engine = predictor.engine

    def slow_engine(images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return engine(images)

    predictor.chain = dataclasses.replace(predictor.chain, engine=slow_engine)
    app = create_app(predictor, ServeSettings(max_inferences=limit, max_batch=1))  # one request a call

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            requests = [http.post("/v1/predict", files=files(("a.jpg", jpeg_bytes))) for _ in range(6)]
            return [r.status_code for r in await asyncio.gather(*requests)]

    assert asyncio.run(burst()) == [200] * 6
    assert peak[0] == limit


def test_cors_is_off_unless_configured(predictor: Predictor) -> None:
    origin = {"Origin": "https://clinic.example"}
    closed = TestClient(create_app(predictor, ServeSettings())).get("/v1/model", headers=origin)
    assert "access-control-allow-origin" not in closed.headers
    app = create_app(predictor, ServeSettings(cors_origins=("https://clinic.example",)))
    opened = TestClient(app).get("/v1/model", headers=origin)
    assert opened.headers["access-control-allow-origin"] == "https://clinic.example"


def test_settings_come_from_the_environment_and_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKINPAMPER_SERVE_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("SKINPAMPER_SERVE_MAX_FILES", "4")
    settings = load_settings()
    assert settings.cors_origins == ("https://a.example", "https://b.example") and settings.max_files == 4
    monkeypatch.setenv("SKINPAMPER_SERVE_MAX_UPLOAD_BYTES", "-5")
    with pytest.raises(
        ConfigError, match=r"^SKINPAMPER_SERVE_MAX_UPLOAD_BYTES='-5': Input should be greater"
    ):
        load_settings()
    monkeypatch.delenv("SKINPAMPER_SERVE_MAX_UPLOAD_BYTES")
    # A path or a trailing slash never equals a browser's Origin header: refused, not silently inert.
    for origin in ("clinic.example", "https://clinic.example/"):
        monkeypatch.setenv("SKINPAMPER_SERVE_CORS_ORIGINS", origin)
        with pytest.raises(ConfigError, match="SKINPAMPER_SERVE_CORS_ORIGINS=.*is not \\* or an http"):
            load_settings()


def test_page_docs_and_static_files(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "not a diagnosis" in page.text and 'name="viewport"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "fetch(`/v1/predict${patientQuery()}`" in client.get("/static/app.js").text
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"]["properties"]["files"]["items"]["format"] == "binary"


def test_probes_answer_head_and_the_page_keeps_its_headers_everywhere(client: TestClient) -> None:
    for path in ("/", "/healthz", "/readyz"):  # uptime monitors probe with HEAD
        response = client.head(path)
        assert response.status_code == 200 and response.content == b""
    for path in ("/", "/static/index.html", "/static/app.js", "/docs", "/redoc"):
        headers = client.get(path).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff", path


def test_api_docs_load_nothing_from_the_internet(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        page = client.get(path)
        assert page.status_code == 200 and "://" not in page.text  # no CDN, no web fonts
        assets = re.findall(r'(?:src|href)="(/[^"]+)"', page.text)
        assert any(asset.endswith(".js") for asset in assets), assets
        for asset in assets:
            assert client.get(asset).status_code == 200, asset
        # Inline scripts run only by their hash: an injected one would not.
        scripts = re.findall(r"script-src ([^;]*)", page.headers["content-security-policy"])[0].split()
        assert "'unsafe-inline'" not in scripts and len(scripts) == 1 + page.text.count("<script>"), scripts


def test_a_stalled_body_is_answered_408_and_the_connection_closed(predictor: Predictor) -> None:
    app = create_app(predictor, ServeSettings(body_timeout=0.3))

    async def stalled_body():
        yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.jpg"\r\n\r\n\xff\xd8'
        await asyncio.sleep(30)  # the client stops sending

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client:
            headers = {"content-type": "multipart/form-data; boundary=b"}
            return await client.post("/v1/predict", content=stalled_body(), headers=headers)

    start = time.perf_counter()
    response = asyncio.run(post())
    assert time.perf_counter() - start < 5
    assert response.status_code == 408 and response.headers["connection"] == "close"
    assert response.json()["detail"] == "no body bytes for 0.3 s; send the request again"


@pytest.mark.slow
def test_serve_command_refuses_bad_settings_before_listening(onnx_model: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "skinpamper", "serve", str(onnx_model), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SKINPAMPER_SERVE_MAX_INFERENCES": "0"},
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("Error: SKINPAMPER_SERVE_MAX_INFERENCES='0': ")


@pytest.mark.slow
def test_service_runs_without_keras(onnx_model: Path, jpeg_bytes: bytes, tmp_path: Path) -> None:
    image = tmp_path / "a.jpg"
    image.write_bytes(jpeg_bytes)
    done = run_without_keras(
        f"""
from fastapi.testclient import TestClient
from skinpamper.serving.predict import Predictor
from skinpamper.serving.service.app import create_app
with TestClient(create_app(Predictor.load({str(onnx_model)!r}))) as client:
    upload = {{"files": ("a.jpg", open({str(image)!r}, "rb"), "image/jpeg")}}
    response = client.post("/v1/predict", files=upload)
print(response.status_code, "keras" in sys.modules, "tensorflow" in sys.modules)
"""
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["200", "False", "False"]


# schemathesis's pytest loader (from_fixture) reads a private pytest attribute that pytest 9.2 removed, so
# the app's schema is fuzzed through schemathesis's Hypothesis strategy instead.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzed_requests_never_cause_a_server_error(predictor: Predictor, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(predictor, ServeSettings()))
    # Positive-data acceptance is left out on purpose: a schema-valid upload of random bytes is 415.
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]

    @given(case=schema.as_strategy(generation_mode=mode))
    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=checks)

    call()


def test_a_run_folder_adds_the_gradcam_overlay(trained_run: Path, jpeg_bytes: bytes) -> None:
    with TestClient(create_app(Predictor.load(trained_run), ServeSettings())) as client:
        assert client.get("/v1/model").json()["gradcam"] is True
        response = client.post("/v1/explain?class=mel", files=files(("lesion.jpg", jpeg_bytes)))
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        overlay = Image.open(io.BytesIO(response.content))
        assert overlay.size == (224, 224) and overlay.mode == "RGB"
        assert overlay.text["Disclaimer"] == NOT_A_DIAGNOSIS
        default = client.post("/v1/explain", files=files(("lesion.jpg", jpeg_bytes)))
        assert default.status_code == 200
        unknown = client.post("/v1/explain?class=xyz", files=files(("a.jpg", jpeg_bytes)))
        assert unknown.status_code == 422  # one line, as the page shows it, not FastAPI's list of objects
        assert unknown.json()["detail"].startswith("query class: String should match pattern")
        two = client.post("/v1/explain", files=files(("a.jpg", jpeg_bytes), ("b.jpg", jpeg_bytes)))
        assert two.status_code == 413
        short = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x05IHDR\x00\x00\x00\x10\x00"  # once a 500
        damaged = client.post("/v1/explain", files=files(("short.png", short)))
        assert damaged.status_code == 422 and damaged.json()["detail"].startswith("short.png: truncated")


def test_an_onnx_export_has_no_explain_route(client: TestClient, jpeg_bytes: bytes) -> None:
    assert client.post("/v1/explain", files=files(("a.jpg", jpeg_bytes))).status_code == 404
    assert "/v1/explain" not in client.get("/openapi.json").json()["paths"]
