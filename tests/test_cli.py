"""The CLI as a user runs it: exit codes, one-line errors without tracebacks, files written."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pandas as pd
import pytest
from click.testing import CliRunner

from skinpamper.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_data_info_prints_counts(ham_folder: Path) -> None:
    result = invoke("data", "info", ham_folder)
    assert result.exit_code == 0
    assert "28" in result.output and "lesions" in result.output
    assert "akiec" in result.output and "vasc" in result.output


def test_data_check_clean_split(ham_folder: Path) -> None:
    result = invoke("data", "check", ham_folder, "--seed", "1")
    assert result.exit_code == 0, result.output
    assert "shared between splits: 0" in result.output
    assert "no lesion and no identical image is in two splits" in result.output


def test_data_check_reports_identical_images_across_splits(ham_folder: Path) -> None:
    jpegs = sorted(ham_folder.rglob("*.jpg"))
    for path in jpegs[1:]:  # every photo byte-identical: some pair must cross splits
        path.write_bytes(jpegs[0].read_bytes())
    result = invoke("data", "check", ham_folder)
    assert result.exit_code == 1
    assert "the split leaks" in result.output


def test_bad_input_is_one_line_and_exit_1(ham_folder: Path) -> None:
    csv = ham_folder / "hmnist_8_8_RGB.csv"
    table = pd.read_csv(csv, dtype=str)
    table.loc[3, "pixel0010"] = "abc"
    table.to_csv(csv, index=False)
    result = invoke("data", "info", csv)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "line 5, column pixel0010" in lines[0] and str(csv) in lines[0]
    assert "Traceback" not in result.output


def test_missing_path(tmp_path: Path) -> None:
    result = invoke("data", "info", tmp_path / "nowhere")
    assert result.exit_code == 1 and "no such file or folder" in result.output


def test_fetch_list_names_every_dataset() -> None:
    result = invoke("data", "fetch", "--list")
    assert result.exit_code == 0
    for name in ("dermamnist", "dermamnist_224", "ham10000", "kaggle"):
        assert name in result.output


def test_explore_writes_page(ham_folder: Path, tmp_path: Path) -> None:
    result = invoke("explore", ham_folder, "--out", tmp_path / "explore")
    assert result.exit_code == 0
    assert (tmp_path / "explore" / "index.html").is_file()
    assert len(list((tmp_path / "explore").glob("*.png"))) >= 5


@pytest.mark.slow
def test_unknown_model_lists_valid_ones(ham_folder: Path, tmp_path: Path) -> None:
    result = invoke("train", "--data", ham_folder, "--model", "resnet9000", "--out", tmp_path / "r")
    assert result.exit_code == 1 and "seed" in result.output
    assert not (tmp_path / "r").exists()


def test_width_flag_reaches_the_model_check(ham_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = invoke("train", "--data", ham_folder, "--model", "seed", "--width", "2", "--out", out)
    assert result.exit_code == 1 and "no width option" in result.output and "compact_cnn" in result.output
    assert not out.exists()


@pytest.mark.slow
def test_colour_constancy_puts_the_layer_in_front_of_the_model(ham_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = (
        "--model",
        "compact_cnn",
        "--image-size",
        "28",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--members",
        "1",
        "--colour-constancy",
    )
    assert invoke("train", "--data", ham_folder, *args, "--out", out).exit_code == 0
    assert json.loads((out / "config.json").read_text())["colour_constancy"] is True
    assert (
        keras.models.load_model(out / "model.keras").name == "compact_cnn_sog"
    )  # the shades-of-grey wrapper


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "skinpamper", "--version"], capture_output=True, text=True, check=True
    )
    assert "skinpamper" in result.stdout


def test_models_lists_each_with_its_sizes_and_weights() -> None:
    result = invoke("models")
    assert result.exit_code == 0
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[1:]}
    assert rows["seed"][1:3] == ["28", "15"] and rows["seed"][5] == "-"
    assert rows["efficientnet_lite0"][1:3] == ["128", "32"] and rows["efficientnet_lite0"][5] == "wheel"
    assert rows["efficientnet_b0"][5] == "download"


@pytest.mark.slow
def test_kill_dash_9_then_resume_keeps_finished_epochs(ham_folder: Path, tmp_path: Path) -> None:
    """A run killed with SIGKILL mid-training continues from its last finished epoch."""
    import json
    import signal
    import time

    out = tmp_path / "run"
    args = [
        "--data",
        ham_folder,
        "--model",
        "compact_cnn",
        "--image-size",
        "28",
        "--epochs",
        "30",
        "--batch-size",
        "4",
        "--members",
        "1",
    ]
    args += ["--out", out]
    process = subprocess.Popen(
        [sys.executable, "-m", "skinpamper", "train", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = out / "state.json"
    deadline = time.monotonic() + 120

    def finished_epochs() -> int:
        return json.loads(state.read_text())["epoch"] if state.exists() else 0

    while time.monotonic() < deadline and finished_epochs() < 1:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = finished_epochs()
    assert 1 <= finished < 30
    # Shorten the run to one more epoch so the test stays quick; resume reads epochs from config.json.
    (out / "config.json").write_text(
        json.dumps({**json.loads((out / "config.json").read_text()), "epochs": finished + 1})
    )
    result = invoke("train", "--resume", out)
    assert result.exit_code == 0, result.output
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == list(range(1, finished + 2))


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["train", "--width", "nan"], "--width"),
        (["train", "--learning-rate", "inf"], "--learning-rate"),
        (["data", "check", ".", "--val", "nan"], "--val"),
        (["predict", ".", ".", "--age", "nan"], "--age"),  # once silently ignored, with exit 0
    ],
)
def test_nan_and_inf_are_refused_wherever_a_number_is_read(args: list[str], option: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output
    assert "is not a finite number" in result.output


def test_an_image_size_the_model_cannot_take_is_refused_before_anything_is_written(
    ham_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = invoke("train", "--data", ham_folder, "--image-size", "7", "--epochs", "1", "--out", out)
    assert result.exit_code == 1 and not out.exists()
    assert result.output == (
        "Error: model 'efficientnet_lite0' cannot take 7 px images: the smallest it takes is 32 px (its "
        "layers would shrink a smaller image below one pixel), the largest 1024 px\n"
    )


@pytest.mark.slow
def test_commands_that_load_tensorflow_print_only_their_own_lines(tmp_path: Path) -> None:
    # train imports Keras (and so TensorFlow) before it reads the data: a missing folder is one line.
    done = subprocess.run(
        [sys.executable, "-m", "skinpamper", "train", "--data", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stderr == f"Error: {tmp_path / 'nowhere'}: no such file or folder\n"


@pytest.mark.parametrize("resume", [False, True])
def test_a_second_train_on_a_run_folder_in_use_refuses_and_changes_nothing(
    resume: bool, ham_folder: Path, tmp_path: Path
) -> None:
    from skinpamper.locks import OutputLock, lock_path

    out = tmp_path / "run"
    out.mkdir()
    (out / "kept.txt").write_text("the first writer's")
    with OutputLock(out):
        args = ["--resume", out] if resume else ["--data", ham_folder, "--epochs", "1", "--out", out]
        result = invoke("train", *args)
    assert result.exit_code == 1
    assert result.output == f"Error: {out}: in use by pid {os.getpid()}\n"
    assert [p.name for p in out.iterdir()] == ["kept.txt"]
    assert not lock_path(out).exists()  # the lock file went with its holder


@pytest.mark.parametrize(("size", "name"), [(28, "dermamnist"), (64, "dermamnist_64"), (96, "dermamnist_128"),
                                            (128, "dermamnist_128"), (260, "dermamnist_224")])  # fmt: skip
def test_without_data_dermamnist_comes_in_a_size_that_is_never_upsampled(
    size: int, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skinpamper.cli.common import resolve_data
    from skinpamper.data import download

    monkeypatch.delenv("SKINPAMPER_DATA", raising=False)
    monkeypatch.setattr(download, "fetch_dataset", lambda wanted, progress=None: Path(f"/fetched/{wanted}"))
    assert resolve_data(None, size) == f"/fetched/{name}"
