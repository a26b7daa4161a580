"""The page at / in a real browser: Debian's chromium driven by Playwright, at a phone's width.

scripts/test installs chromium with apt-get where it is missing; Playwright's own browser download is
never used. Outside CI a machine without /usr/bin/chromium skips these tests, and says so.
"""

import base64
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import expect

from service_helpers import answering, encode, photo, with_thresholds
from skinpamper import NOT_A_DIAGNOSIS
from skinpamper.scoring.metadata_model import PatientInfo
from skinpamper.serving.predict import Predictor
from skinpamper.serving.service.app import create_app
from skinpamper.serving.service.settings import ServeSettings

pytestmark = pytest.mark.slow  # each module starts Chromium and a server
CHROMIUM = Path("/usr/bin/chromium")
# Headless as root in a sandbox with no network: no zygote sandbox, no GPU, no calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; scripts/test installs it with apt-get")
        pytest.skip(f"{CHROMIUM} is not installed (scripts/test installs it with apt-get)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def serving(predictor: Predictor) -> Iterator[str]:
    """The service on a free loopback port in a background thread, as `skinpamper serve` runs it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(predictor, ServeSettings()), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


@pytest.fixture
def phone_page(browser):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    yield page
    context.close()


def test_choose_an_image_and_see_the_bars_at_phone_width(
    phone_page, onnx_model: Path, tmp_path: Path
) -> None:
    image = tmp_path / "lesion.jpg"
    photo().save(image, quality=95)
    with serving(answering(Predictor.load(onnx_model))) as url:
        phone_page.goto(url)
        assert phone_page.locator("#note").inner_text() == NOT_A_DIAGNOSIS
        phone_page.set_input_files("#file", str(image))
        phone_page.wait_for_selector("#bars .bar")
        bars = phone_page.locator("#bars .bar")
        assert bars.count() == 7
        widths = [float(bars.nth(i).locator(".fill").evaluate("e => e.style.width")[:-1]) for i in range(7)]
        assert widths == sorted(widths, reverse=True) and abs(sum(widths) - 100) < 0.5
        assert phone_page.locator("#top").inner_text().startswith("Most probable: ")
        assert NOT_A_DIAGNOSIS in phone_page.locator("#how").inner_text()
        phone_page.wait_for_selector("#cam-missing:not([hidden])")
        assert "ONNX export" in phone_page.locator("#cam-missing").inner_text()
        assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        phone_page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)


def test_drop_an_image_and_see_the_gradcam_overlay(phone_page, trained_run: Path) -> None:
    png = encode(photo(seed=7).convert("RGBA"), "PNG")
    with serving(answering(Predictor.load(trained_run))) as url:
        phone_page.goto(url)
        phone_page.evaluate(
            """(b64) => {
                const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                const data = new DataTransfer();
                data.items.add(new File([bytes], "lesion.png", { type: "image/png" }));
                const drop = new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true });
                document.getElementById("drop").dispatchEvent(drop);
            }""",
            base64.b64encode(png).decode(),
        )
        phone_page.wait_for_selector("#cam-figure:not([hidden])")
        expect(phone_page.locator("#cam")).to_have_js_property("naturalWidth", 224)  # decoded, 224 px
        assert phone_page.locator("#bars .bar").count() == 7
        assert phone_page.locator("#cam-caption").inner_text().startswith("Grad-CAM for ")


def test_a_file_that_is_not_an_image_shows_the_servers_reason(
    phone_page, onnx_model: Path, tmp_path: Path
) -> None:
    fake = tmp_path / "lesion.png"
    fake.write_text("not an image")
    with serving(Predictor.load(onnx_model)) as url:
        phone_page.goto(url)
        phone_page.set_input_files("#file", str(fake))
        phone_page.wait_for_selector("#error:not([hidden])")
        assert phone_page.locator("#error").inner_text().startswith("415: lesion.png: not a JPEG or PNG")
        assert phone_page.locator("#result").is_hidden()


def test_patient_fields_are_sent_with_the_image(phone_page, onnx_model: Path, tmp_path: Path) -> None:
    image = tmp_path / "lesion.jpg"
    photo(seed=3).save(image, quality=95)
    predictor = answering(Predictor.load(onnx_model))
    (expected,) = predictor.predict([image], patients=[PatientInfo(age=70, sex="male", site="face")])
    with serving(predictor) as url:
        phone_page.goto(url)
        phone_page.wait_for_selector("#patient:not([hidden])")
        assert phone_page.locator("#site option").all_inner_texts() == ["not given", "back", "face"]
        phone_page.fill("#age", "70")
        phone_page.select_option("#sex", "male")
        phone_page.select_option("#site", "face")
        phone_page.set_input_files("#file", str(image))
        phone_page.wait_for_selector("#bars .bar")
        assert "combined with the patient's age, sex and site" in phone_page.locator("#how").inner_text()
        top = phone_page.locator("#bars .bar").first
        assert top.get_attribute("data-class") == expected.top_class
        assert top.locator(".value").inner_text() == f"{100 * max(expected.probabilities):.1f}%"
        assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        phone_page.select_option("#site", "")  # changing a field predicts the same image again
        phone_page.fill("#age", "")
        phone_page.select_option("#sex", "")
        # Playwright's own polling: a wait_for_function string would be eval'd, which the page's CSP forbids.
        expect(phone_page.locator("#how")).not_to_contain_text("combined")
        (alone,) = predictor.predict([image])
        top = phone_page.locator("#bars .bar").first
        assert top.locator(".value").inner_text() == f"{100 * max(alone.probabilities):.1f}%"


def test_patient_fields_stay_hidden_for_a_model_without_metadata(
    phone_page, trained_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "metadata_model.json").unlink()
    with serving(Predictor.load(run)) as url:
        phone_page.goto(url)
        expect(phone_page.locator("#model")).not_to_be_empty()
        assert phone_page.locator("#patient").is_hidden()


def test_api_docs_render_without_internet(phone_page, onnx_model: Path) -> None:
    blocked = []

    def offline(route) -> None:  # as on a machine without internet: only the server itself answers
        if route.request.url.startswith("http://127.0.0.1:"):
            route.continue_()
        else:
            blocked.append((route.request.resource_type, route.request.url))
            route.abort()

    phone_page.route("**/*", offline)
    with serving(Predictor.load(onnx_model)) as url:
        phone_page.goto(f"{url}/docs")
        expect(phone_page.locator(".opblock-summary-path").first).to_be_visible(timeout=30_000)
        assert "/v1/predict" in phone_page.locator("#swagger-ui").inner_text()
        phone_page.goto(f"{url}/redoc")
        expect(phone_page.get_by_text("/v1/predict").first).to_be_attached(timeout=30_000)
    # Scripts and styles all come from the package; ReDoc's own "powered by" logo, an image on its
    # CDN, is all that is missing offline.
    assert all(kind == "image" for kind, _ in blocked), blocked


@pytest.mark.parametrize("status", ["out_of_distribution", "uncertain", "ok"])
def test_the_page_says_plainly_when_the_model_refuses_or_is_unsure(
    phone_page, onnx_model: Path, tmp_path: Path, status: str
) -> None:
    image = tmp_path / "photo.jpg"
    photo(seed=9).save(image, quality=95)
    thresholds = {
        "out_of_distribution": {"ood": -1.0},
        "uncertain": {"ood": 1e30, "confidence": 1.01},
        "ok": {"ood": 1e30, "confidence": 0.0},
    }[status]
    with serving(with_thresholds(Predictor.load(onnx_model), **thresholds)) as url:
        phone_page.goto(url)
        phone_page.set_input_files("#file", str(image))
        phone_page.wait_for_selector("#result:not([hidden])")
        verdict = phone_page.locator("#verdict")
        if status == "out_of_distribution":
            expect(verdict).to_contain_text("This does not look like a dermoscopy image")
            assert phone_page.locator("#answer").is_hidden()  # no bars at all
        elif status == "uncertain":
            expect(verdict).to_contain_text("The model is not sure about this image")
            assert phone_page.locator("#answer").get_attribute("open") is None  # bars collapsed
            assert phone_page.locator("#bars .bar").first.is_hidden()
            phone_page.click("#answer-summary")
            expect(phone_page.locator("#bars .bar").first).to_be_visible()
        else:  # bars at once, with only the melanoma rule-out said beside them
            expect(verdict).to_contain_text("ruled out (rule-out cut: sensitivity")
            assert "dermoscopy" not in verdict.inner_text() and "not sure" not in verdict.inner_text()
            assert phone_page.locator("#bars .bar").first.is_visible()
        assert NOT_A_DIAGNOSIS in phone_page.locator("#note").inner_text()


def test_a_model_without_a_detector_says_so_on_the_page(phone_page, tmp_path: Path) -> None:
    old = Path(__file__).parents[1] / "fixtures" / "run_v0_1" / "model.onnx"
    image = tmp_path / "photo.jpg"
    photo(seed=9).save(image, quality=95)
    with serving(Predictor.load(old)) as url:
        phone_page.goto(url)
        phone_page.set_input_files("#file", str(image))
        phone_page.wait_for_selector("#bars .bar")
        expect(phone_page.locator("#verdict")).to_contain_text("cannot tell whether an image is a dermoscopy")
