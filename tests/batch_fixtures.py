"""Shared by the streaming and Ray tests: a mixed archive, a model that ships with the tests, and the
rows today's in-memory path gives for them (the answer every engine must reproduce)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from archive import MODEL, PATIENTS, write_archive
from skinpamper.serving.batch import result_rows
from skinpamper.serving.predict import Predictor, find_images


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """300 images of mixed forms and sizes and 6 broken files, as `predict` finds them."""
    folder = tmp_path_factory.mktemp("archive") / "photos"
    write_archive(folder)
    return find_images([folder])


@pytest.fixture(scope="module")
def expected(archive: list[Path]) -> pd.DataFrame:
    """Today's path: Predictor.predict_files (one batch after another, in this process), 8-view TTA."""
    predictor = Predictor.load(MODEL, tta=True)
    patients = {path: info for path in archive if (info := PATIENTS.of(str(path))) is not None}
    results = list(predictor.predict_files(archive, 64, patients))
    return pd.DataFrame(result_rows(results, [str(p) for p in archive], predictor.card.model_id))
