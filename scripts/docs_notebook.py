"""MkDocs hook: the tutorial notebook (notebooks/quickstart.ipynb) on the site, run, with its figures.

Each build runs a copy of the notebook (nbclient) and mkdocs-jupyter renders it with its outputs
(mkdocs.yml). It runs on a small synthetic stand-in for the Kaggle HAM10000 folder, drawn here, never
on the real data: the build stays quick (under a minute on 2 cores), offline and alike on every
machine, and a note at the top of the page says so. The copy runs in a scratch folder with its own
SKINPAMPER_HOME, so its run folder and caches never land in the repository; the notebook stays the
one source of the page. A cell that fails fails the build.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pandas as pd
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from nbclient import NotebookClient
from PIL import Image

from skinpamper.classes import CODES, HMNIST_CODES

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"
PAGE = "tutorial.ipynb"
# Images per class: HAM10000's imbalance (two thirds nv), small enough to train in seconds.
COUNTS = {"akiec": 20, "bcc": 26, "bkl": 36, "df": 14, "mel": 36, "nv": 110, "vasc": 14}
# How each class is drawn: lesion colour (RGB) and radius as a share of the photo's height.
LOOKS = {
    "akiec": ((190, 105, 95), 0.26),
    "bcc": ((205, 135, 140), 0.22),
    "bkl": ((165, 125, 95), 0.30),
    "df": ((150, 100, 85), 0.16),
    "mel": ((70, 45, 45), 0.32),
    "nv": ((125, 80, 60), 0.24),
    "vasc": ((150, 35, 65), 0.18),
}
MEAN_AGE = {"akiec": 67, "bcc": 66, "bkl": 59, "df": 52, "mel": 61, "nv": 45, "vasc": 50}
SITES = ("back", "lower extremity", "trunk", "upper extremity", "abdomen", "face", "chest")
PHOTO = (45, 60)  # height, width: HAM10000's 4:3, small
NOTE = (
    "> **On this site** the notebook was run when the documentation was built, on {n} synthetic "
    "images that stand in for the Kaggle folder (drawn by `scripts/docs_notebook.py`), with the "
    "progress bars and TensorFlow's log lines left out. Two epochs on so few images leave the model "
    "near chance, so the figures show what each step gives, not HAM10000's results: run it on the "
    "real data for those."
)
LOG_LINE = re.compile(r"^(WARNING|INFO):tensorflow:.*\n?", re.M)
_scratch: dict[str, Any] = {}


def draw_lesion(code: str, lesion: int, view: int) -> np.ndarray:
    """A dermoscopy-like photo: skin, a class-coloured blot (ragged for mel), dark corners; a lesion's
    views share its shape and differ in noise and position."""
    shape = np.random.default_rng(lesion)
    noise = np.random.default_rng((lesion, view))
    height, width = PHOTO
    yy, xx = np.mgrid[0:height, 0:width].astype(float)
    skin = np.array((225, 172, 150)) + shape.normal(0, 7, 3)
    image = skin + noise.normal(0, 5, (height, width, 3))
    colour, radius = LOOKS[code]
    ry = radius * height * shape.uniform(0.8, 1.2)
    rx = ry * shape.uniform(1.0, 1.5)
    turn, phase = shape.uniform(0, np.pi), shape.uniform(0, 2 * np.pi)
    dy, dx = yy - height / 2 - noise.normal(0, 2), xx - width / 2 - noise.normal(0, 3)
    u, v = dx * np.cos(turn) + dy * np.sin(turn), -dx * np.sin(turn) + dy * np.cos(turn)
    ragged = 0.15 if code == "mel" else 0.05
    edge = 1 + ragged * np.sin(5 * np.arctan2(v, u) + phase) - np.hypot(u / rx, v / ry)
    inside = np.clip(edge * 5, 0, 1)[..., None]
    image = image * (1 - inside) + (np.array(colour) + shape.normal(0, 12, 3)) * inside
    corners = ((yy - height / 2) / height) ** 2 + ((xx - width / 2) / width) ** 2
    return np.clip(image * np.clip(1.15 - corners, 0.6, 1)[..., None], 0, 255).astype(np.uint8)


def write_kaggle_folder(folder: Path, seed: int = 0) -> int:
    """HAM10000_metadata.csv, hmnist_28_28_RGB.csv (the photos squashed to 28 px, as Kaggle's) and the
    JPEGs in two part folders; one lesion in five is photographed twice. Returns the image count."""
    rng = np.random.default_rng(seed)
    rows, photos = [], []
    for code, count in COUNTS.items():
        lesion = 0
        while sum(row["dx"] == code for row in rows) < count:  # a last pair may add one
            lesion_id = f"HAM_{CODES.index(code)}{lesion:05d}"
            for view in range(2 if lesion % 5 == 0 else 1):
                photos.append(draw_lesion(code, CODES.index(code) * 1000 + lesion, view))
                age = float(np.clip(5 * round(rng.normal(MEAN_AGE[code], 12) / 5), 5, 85))
                rows.append(
                    {
                        "lesion_id": lesion_id,
                        "image_id": f"ISIC_{len(rows):07d}",
                        "dx": code,
                        "dx_type": "histo" if code in ("mel", "bcc", "akiec") else "follow_up",
                        "age": age,
                        "sex": rng.choice(["male", "female"]),
                        "localization": rng.choice(SITES),
                    }
                )
            lesion += 1
    meta = pd.DataFrame(rows)
    folder.mkdir(parents=True, exist_ok=True)
    meta.to_csv(folder / "HAM10000_metadata.csv", index=False)
    small = np.stack([np.asarray(Image.fromarray(p).resize((28, 28), Image.BICUBIC)) for p in photos])
    pixels = pd.DataFrame(small.reshape(len(meta), -1))
    pixels.columns = [f"pixel{i:04d}" for i in range(pixels.shape[1])]
    pixels["label"] = [HMNIST_CODES.index(code) for code in meta["dx"]]
    pixels.to_csv(folder / "hmnist_28_28_RGB.csv", index=False)
    for i, image_id in enumerate(meta["image_id"]):
        part = folder / f"HAM10000_images_part_{1 + i % 2}"
        part.mkdir(exist_ok=True)
        Image.fromarray(photos[i]).save(part / f"{image_id}.jpg", quality=95)
    return len(meta)


def run_notebook(folder: Path) -> Path:
    """The notebook run in `folder` on the synthetic data, with the site's note, as folder/PAGE."""
    count = write_kaggle_folder(folder / "ham10000")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.insert(1, nbformat.v4.new_markdown_cell(NOTE.format(n=count)))
    settings = {
        "SKINPAMPER_DATA": str(folder / "ham10000"),
        "SKINPAMPER_HOME": str(folder / "home"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)  # the kernel inherits them
    try:
        NotebookClient(
            notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
        ).execute()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [_quiet(output) for output in cell.outputs if output.get("name") != "stderr"]
            cell.outputs = [output for output in cell.outputs if output.get("text", True)]
    nbformat.write(notebook, folder / PAGE)
    return folder / PAGE


def _quiet(output: Any) -> Any:
    """A stream output without TensorFlow's log lines (retracing warnings and the like)."""
    if output.get("output_type") == "stream":
        output["text"] = LOG_LINE.sub("", output["text"])
    return output


def on_config(config: Any, **kwargs: Any) -> Any:
    _scratch["folder"] = Path(tempfile.mkdtemp(prefix="skinpamper-docs-"))
    _scratch["page"] = run_notebook(_scratch["folder"])
    return config


@event_priority(100)  # before mkdocs-jupyter's on_files, which claims the .ipynb pages
def on_files(files: Files, config: Any, **kwargs: Any) -> Files:
    # A File of the scratch folder, not File.generated: mkdocs-jupyter's wrapper loses a generated
    # file's path.
    page = _scratch["page"]
    files.append(File(page.name, str(page.parent), config.site_dir, config.use_directory_urls))
    return files


def on_post_build(config: Any, **kwargs: Any) -> None:
    _clean_up()


def on_build_error(error: Exception, **kwargs: Any) -> None:
    _clean_up()


def _clean_up() -> None:
    """Remove the scratch folder; the built page holds its figures."""
    folder = _scratch.pop("folder", None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
