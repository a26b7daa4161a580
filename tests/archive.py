"""A generated image archive like a clinic's: mixed formats, modes and sizes, with broken files in it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from helpers import make_images
from skinpamper.classes import CODES
from skinpamper.scoring.metadata_model import PatientInfo
from skinpamper.serving.batch import Patients

MODEL = Path(__file__).parent / "fixtures" / "run_v0_1" / "model.onnx"  # 28 px, with a metadata model
# A third of the images have a patient on record, by file stem, as a --metadata CSV gives them.
PATIENTS = Patients(
    by_id={
        f"img{i:04d}": PatientInfo(age=30 + i % 50, sex="male", site=("back", "face")[i % 2])
        for i in range(0, 300, 3)
    }
)


# Each entry saves one image in one of the forms a user's archive holds.
FORMS = {
    "jpg": lambda im, path: im.save(path.with_suffix(".jpg"), quality=90),
    "png": lambda im, path: im.save(path.with_suffix(".png")),
    "rgba.png": lambda im, path: im.convert("RGBA").save(path.with_suffix(".rgba.png")),
    "grey.jpg": lambda im, path: im.convert("L").save(path.with_suffix(".grey.jpg")),
    "palette.png": lambda im, path: im.convert("P").save(path.with_suffix(".palette.png")),
}
BROKEN = {
    "truncated.jpg": lambda good: good[: len(good) // 3],
    "text.jpg": lambda good: b"not an image at all",
    "empty.png": lambda good: b"",
}


def write_archive(folder: Path, n: int = 300, broken: int = 6) -> list[Path]:
    """`n` good images of odd sizes (3 to 120 px a side) in nested folders, then `broken` bad files."""
    rng = np.random.default_rng(13)
    forms = sorted(FORMS)
    for i in range(n):
        width, height = (int(v) for v in rng.integers(3, 121, 2))
        image = Image.fromarray(make_images(1, height, width, seed=i)[0])
        sub = folder / f"part{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        FORMS[forms[i % len(forms)]](image, sub / f"img{i:04d}")
    good = next(folder.rglob("*.jpg")).read_bytes()
    kinds = sorted(BROKEN)
    for j in range(broken):
        kind = kinds[j % len(kinds)]
        (folder / "part1" / f"bad{j:02d}.{kind}").write_bytes(BROKEN[kind](good))
    return sorted(folder.rglob("*"))


def assert_same_rows(found: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same ids in the same order, the same error rows, probabilities within 1e-6, same flags."""
    assert found["image"].tolist() == expected["image"].tolist()
    errors = [e if isinstance(e, str) and e else None for e in found["error"]]
    assert errors == [e if isinstance(e, str) else None for e in expected["error"]]
    ok = expected["error"].isna().to_numpy()
    columns = [f"p_{code}" for code in CODES]
    np.testing.assert_allclose(
        found.loc[ok, columns].astype(float).to_numpy(), expected.loc[ok, columns].to_numpy(), atol=1e-6
    )
    for column in ("top_class", "with_metadata", "tta", "model_id"):
        assert [str(v) for v in found.loc[ok, column]] == [str(v) for v in expected.loc[ok, column]], column
