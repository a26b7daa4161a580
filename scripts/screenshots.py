"""Make the README's and the documentation's pictures from a real run: docs/report.png and docs/page.png.

Usage: .venv/bin/python scripts/screenshots.py RUN IMAGE
  RUN    a finished run folder; its report is rebuilt with this checkout's code in a scratch copy
  IMAGE  a lesion photo to drop on the service's page (served from RUN, so with Grad-CAM)

Drives Debian's /usr/bin/chromium headless through Playwright (never a browser Playwright downloads):
the top of the report at desktop width, the page at phone width. The PNGs are reduced to 256 colours
so the repository stays small.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from PIL import Image
from playwright.sync_api import sync_playwright

from skinpamper.reports.run_report import write_run_report
from skinpamper.serving.predict import Predictor
from skinpamper.serving.service.app import create_app
from skinpamper.serving.service.settings import ServeSettings

DOCS = Path(__file__).resolve().parents[1] / "docs"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def shrink(path: Path) -> None:
    """Rewrite a screenshot as a 256-colour PNG: text and charts survive it, the file is a third."""
    image = Image.open(path).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
    image.save(path, optimize=True)


def report_shot(run: Path, browser, out: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / run.name
        shutil.copytree(run, copy, ignore=shutil.ignore_patterns("*.keras"))
        report = write_run_report(copy)
        page = browser.new_page(viewport={"width": 1000, "height": 1150})
        page.goto(report.as_uri())
        page.screenshot(path=str(out))
        page.close()


def page_shot(run: Path, image: Path, browser, out: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(Predictor.load(run), ServeSettings())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.1)
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
        )
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.set_input_files("#file", str(image))
        page.wait_for_selector("#bars .bar")
        page.wait_for_selector("#cam-figure:not([hidden])")
        page.screenshot(path=str(out), full_page=True)
        context.close()
    finally:
        server.should_exit = True
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path)
    parser.add_argument("image", type=Path)
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        report_shot(args.run, browser, DOCS / "report.png")
        page_shot(args.run, args.image, browser, DOCS / "page.png")
        browser.close()
    for name in ("report.png", "page.png"):
        shrink(DOCS / name)
        print(f"wrote {DOCS / name} ({(DOCS / name).stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
