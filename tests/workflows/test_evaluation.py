"""The CLI and the Python API evaluate through one workflow: the same set gets the same answer at
either door, and one rule says whether a set is the run's own data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import skinpamper
from skinpamper.classes import CODES
from skinpamper.cli import main
from skinpamper.data.load import load_dataset
from skinpamper.errors import ConfigError
from skinpamper.workflows.evaluation import holds_the_runs_split

QUICK = ["--no-tta", "--bootstrap", "0"]


def cli_evaluate(run: Path, out: Path, *data: str) -> pd.DataFrame:
    """predictions.csv of `skinpamper evaluate RUN [--data DATA]`, checking its part line."""
    result = CliRunner().invoke(main, ["evaluate", str(run), *data, *QUICK, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return pd.read_csv(out / "predictions.csv")


def api_evaluate(run: Path, data: str | Path | None, out: Path) -> pd.DataFrame:
    skinpamper.evaluate(run, data, tta=False, bootstrap=0, out=out, progress=False)
    return pd.read_csv(out / "predictions.csv")


def assert_same_answer(cli_out: Path, api_out: Path) -> None:
    cli, api = (json.loads((out / "metrics.json").read_text()) for out in (cli_out, api_out))
    assert (cli["part"], cli["plain"]) == (api["part"], api["plain"])
    rows = [pd.read_csv(out / "predictions.csv") for out in (cli_out, api_out)]
    assert rows[0]["image_id"].tolist() == rows[1]["image_id"].tolist()
    probs = [f"p_{code}" for code in CODES]
    np.testing.assert_allclose(rows[0][probs].to_numpy(), rows[1][probs].to_numpy(), atol=1e-6)


@pytest.mark.slow
def test_the_runs_own_data_is_scored_on_its_test_split_at_either_door(
    trained_run: Path, trained_data: Path, tmp_path: Path
) -> None:
    """`--data THE_TRAINING_DATA` once was refused by the CLI and scored by Python: now both score its
    test split, as leaving the data out does."""
    own = str(trained_data)
    split = json.loads((trained_run / "split.json").read_text())
    cli = cli_evaluate(trained_run, tmp_path / "cli", "--data", own)
    api_evaluate(trained_run, own, tmp_path / "api")
    assert cli["image_id"].tolist() == split["test"]
    assert_same_answer(tmp_path / "cli", tmp_path / "api")
    cli_evaluate(trained_run, tmp_path / "default")
    assert_same_answer(tmp_path / "cli", tmp_path / "default")


def test_another_set_is_scored_whole_at_either_door(
    trained_run: Path, labelled_folder: Path, tmp_path: Path
) -> None:
    cli = cli_evaluate(trained_run, tmp_path / "cli", "--data", str(labelled_folder))
    api_evaluate(trained_run, labelled_folder, tmp_path / "api")
    assert len(cli) == len(CODES)
    assert json.loads((tmp_path / "cli" / "metrics.json").read_text())["part"] == "all"
    assert_same_answer(tmp_path / "cli", tmp_path / "api")


def training_images_only(run: Path, data: Path, folder: Path, count: int = 5) -> Path:
    """A labelled folder of `count` of the run's training photos: images the model learnt from."""
    meta = pd.read_csv(data / "HAM10000_metadata.csv").set_index("image_id")
    ids = json.loads((run / "split.json").read_text())["train"][:count]
    folder.mkdir()
    for image_id in ids:
        shutil.copy(next(data.rglob(f"{image_id}.jpg")), folder)
    pd.DataFrame({"image_id": ids, "dx": meta.loc[ids, "dx"]}).to_csv(folder / "labels.csv", index=False)
    return folder


def test_a_set_holding_some_training_images_is_refused_at_either_door(
    trained_run: Path, trained_data: Path, tmp_path: Path
) -> None:
    seen = training_images_only(trained_run, trained_data, tmp_path / "seen")
    message = f"{seen / 'labels.csv'}: holds 5 of the run's training images but not its whole split"
    result = CliRunner().invoke(
        main, ["evaluate", str(trained_run), "--data", str(seen), "--out", str(tmp_path / "e")]
    )
    assert result.exit_code == 1 and result.output.startswith(f"Error: {message}")
    assert not (tmp_path / "e").exists()
    with pytest.raises(ConfigError, match="holds 5 of the run's training images but not its whole split"):
        skinpamper.evaluate(trained_run, seen, bootstrap=0, out=tmp_path / "e", progress=False)
    assert not (tmp_path / "e").exists()


def test_own_data_is_decided_by_the_images_held(ham_folder: Path, labelled_folder: Path) -> None:
    dataset = load_dataset(ham_folder, size=8)
    ids = dataset.meta["image_id"].tolist()
    split = {"train": ids[:60], "val": ids[60:70], "test": ids[70:]}
    assert holds_the_runs_split(split, dataset)
    assert not holds_the_runs_split(split, load_dataset(labelled_folder, size=8))
    with pytest.raises(ConfigError, match="holds 2 of the run's training images"):
        holds_the_runs_split({**split, "train": [*ids[:2], "ISIC_elsewhere"]}, dataset.subset(np.arange(2)))
