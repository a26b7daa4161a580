"""Fixtures and hooks only: tiny data in every real HAM10000 format, made by the tests themselves (no
network, no shared data), and the one trained run that the CLI, API, report and service tests share.

The plain helpers these use are in helpers.py; import them from there, never from this file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers import DATA_USER, make_images, write_ham_folder
from skinpamper.classes import CODES


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the every-model matrix first: its cases are the longest (B0's three members about six
    minutes), so workers of `pytest -n` (scripts/test) that start them last would finish one after
    the other; started first, the short tests fill in around them."""
    items.sort(key=lambda item: "test_every_model.py" not in item.nodeid)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep caches and downloads of every test out of the user's home."""
    monkeypatch.setenv("SKINPAMPER_HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture
def ham_folder(tmp_path: Path) -> Path:
    """A Kaggle-like HAM10000 folder (see helpers.write_ham_folder)."""
    return write_ham_folder(tmp_path / "ham")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one trained run of the session, made by `skinpamper train` as a user makes it: the 28 px
    recipe's model (compact_cnn, a single member; the default Lite0 is trained by test_every_model),
    one epoch, on a HAM10000-like folder (`trained_data`, which stays in place, in DATA_USER's home so
    that tests can check no published file names it).

    Training is the slow part, so the CLI, API, report and service tests all read this one folder: a
    test may read it, never change it; one that changes a run works on a copy
    (`shutil.copytree(trained_run, tmp_path / "run")`).
    """
    from click.testing import CliRunner

    from skinpamper.cli import main

    root = tmp_path_factory.mktemp("trained")
    folder = write_ham_folder(root / "home" / DATA_USER / "ham")
    args = [
        "train",
        "--data",
        folder,
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
    with pytest.MonkeyPatch.context() as patch:  # the autouse home is per test, this fixture outlives it
        patch.setenv("SKINPAMPER_HOME", str(root / "home"))
        result = CliRunner().invoke(
            main, [*map(str, args), "--out", str(root / "run")], catch_exceptions=False
        )
    assert result.exit_code == 0, result.output
    return root / "run"


@pytest.fixture(scope="session")
def trained_data(trained_run: Path) -> Path:
    """The HAM10000-like folder `trained_run` was trained on (read it, never change it)."""
    return trained_run.parent / "home" / DATA_USER / "ham"


@pytest.fixture(scope="session")
def onnx_model(trained_run: Path) -> Path:
    """`trained_run`'s ONNX export, through the CLI as a user makes it; written beside the run, not into
    it, so that the run folder stays exactly as training left it."""
    from click.testing import CliRunner

    from skinpamper.cli import main

    out = trained_run.parent / "export" / "model.onnx"
    out.parent.mkdir()
    result = CliRunner().invoke(
        main, ["export", str(trained_run), "--format", "onnx", "--out", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def dermamnist_npz(tmp_path: Path) -> Path:
    """A DermaMNIST-like .npz: official train/val/test keys, labels shaped (N, 1) in medmnist order."""
    path = tmp_path / "dermamnist.npz"
    rng = np.random.default_rng(2)
    arrays = {}
    for name, n in (("train", 14), ("val", 7), ("test", 7)):
        arrays[f"{name}_images"] = make_images(n, 28, 28, seed=n)
        arrays[f"{name}_labels"] = (np.arange(n) % 7).reshape(-1, 1).astype(np.uint8)
    rng.shuffle(arrays["train_labels"])
    np.savez(path, **arrays)
    return path


@pytest.fixture
def class_folders(tmp_path: Path) -> Path:
    """Images in sub-folders named by class code, PNG and JPEG, odd sizes."""
    folder = tmp_path / "classes"
    for i, code in enumerate(CODES):
        (folder / code).mkdir(parents=True)
        for j, image in enumerate(make_images(2, 30 + i, 17, seed=i)):
            Image.fromarray(image).save(folder / code / f"{code}_{j}.{'png' if j else 'jpg'}")
    return folder


@pytest.fixture
def labelled_folder(tmp_path: Path) -> Path:
    """An external test set: images plus labels.csv with columns image_id,dx."""
    folder = tmp_path / "external"
    folder.mkdir()
    ids = [f"ext_{i}" for i in range(len(CODES))]
    for image_id, image in zip(ids, make_images(len(ids), 40, 30, seed=3), strict=True):
        Image.fromarray(image).save(folder / f"{image_id}.png")
    pd.DataFrame({"image_id": ids, "dx": list(CODES)}).to_csv(folder / "labels.csv", index=False)
    return folder
