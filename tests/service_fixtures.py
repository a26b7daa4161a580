"""A tiny trained run and its ONNX export, made once per test session, plus two test images.

Training (1 epoch at 28 px on 84 random JPEGs) and exporting take ~20 s, so the predict, export,
service and browser tests share them; tests that change a run work on a copy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import DX, make_images, write_metadata
from service_helpers import encode, photo
from skinpamper.cli import main

DATA_USER = "alice"  # a user name no published artefact may show


@pytest.fixture(scope="session")
def served_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run folder (default model, 28 px, calibration.json and metrics.json included).

    Its data lies under DATA_USER's home so that tests can check no published file names the folder.
    """
    root = tmp_path_factory.mktemp("served")
    data = root / "home" / DATA_USER / "ham"
    part = data / "HAM10000_images_part_1"
    part.mkdir(parents=True)
    write_metadata(data)
    for i, pixels in enumerate(make_images(len(DX), 15, 20, seed=1)):
        Image.fromarray(pixels).save(part / f"ISIC_{i:07d}.jpg", quality=95)
    args = [
        "train",
        "--data",
        data,
        "--model",
        "compact_cnn",
        "--image-size",
        "28",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--members",
        "1",
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKINPAMPER_HOME", str(root / "home"))
        result = CliRunner().invoke(
            main, [*map(str, args), "--out", str(root / "run")], catch_exceptions=False
        )
    assert result.exit_code == 0, result.output
    return root / "run"


@pytest.fixture(scope="session")
def onnx_model(served_run: Path) -> Path:
    """The run's ONNX export, through the CLI as a user makes it."""
    result = CliRunner().invoke(main, ["export", str(served_run), "--format", "onnx"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return served_run / "model.onnx"


@pytest.fixture
def jpeg_bytes() -> bytes:
    return encode(photo(), "JPEG", quality=95)


@pytest.fixture
def png_rgba_bytes() -> bytes:
    return encode(photo(seed=6).convert("RGBA"), "PNG")
