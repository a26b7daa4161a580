"""Predictor and `skinpamper predict`: training's preprocessing, TTA, calibration, both backends, no Keras."""

import csv
import inspect
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fuzz_corpus import damaged_files, valid_files
from service_helpers import encode, photo, run_without_keras
from skinpamper import NOT_A_DIAGNOSIS
from skinpamper.classes import CODES
from skinpamper.cli import main
from skinpamper.cli.predict_commands import predict_command
from skinpamper.errors import ConfigError, DataError
from skinpamper.imaging import load_image
from skinpamper.scoring.calibration import apply_temperature
from skinpamper.scoring.metadata_model import PatientInfo, fuse, metadata_frame
from skinpamper.serving.predict import ONNX_METADATA_KEY, ModelCard, Predictor
from skinpamper.serving.rows import prediction_row, row_columns
from skinpamper.training.run import Run

# Modes a user's files come in; each must give the prediction of its 8-bit RGB equivalent.
MODES = {
    "rgb_jpeg": lambda im: encode(im, "JPEG", quality=95),
    "rgba_png": lambda im: encode(im.convert("RGBA"), "PNG"),
    "grey_png": lambda im: encode(im.convert("L"), "PNG"),
    "palette_png": lambda im: encode(im.convert("P"), "PNG"),
    "cmyk_jpeg": lambda im: encode(im.convert("CMYK"), "JPEG", quality=95),
    "grey16_png": lambda im: encode(
        Image.fromarray(np.asarray(im.convert("L"), dtype=np.uint16) * 257), "PNG"
    ),
}


@pytest.fixture(scope="module")
def keras_predictor(trained_run: Path) -> Predictor:
    return Predictor.load(trained_run)


@pytest.fixture(scope="module")
def onnx_predictor(onnx_model: Path) -> Predictor:
    return Predictor.load(onnx_model)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_any_mode_is_preprocessed_as_in_training_and_both_backends_agree(
    mode: str, keras_predictor: Predictor, onnx_predictor: Predictor, trained_run: Path
) -> None:
    data = MODES[mode](photo())
    config = Run.open(trained_run).config()
    model = Run.open(trained_run).load_model()
    # What training would have fed the model for this file, then the run's temperature.
    expected = np.asarray(
        model.predict_on_batch(load_image(data, config.image_size, config.fit)[None].astype("f4"))
    )
    expected = apply_temperature(expected, Run.open(trained_run).temperature())
    for predictor in (keras_predictor, onnx_predictor):
        (prediction,) = predictor.predict([data], names=[f"x.{mode}"])
        assert prediction.image == f"x.{mode}" and prediction.calibrated and not prediction.tta
        np.testing.assert_allclose(prediction.probabilities, expected[0], atol=1e-4)
        assert abs(sum(prediction.probabilities) - 1) < 1e-6
        assert prediction.note == NOT_A_DIAGNOSIS and prediction.model_id == keras_predictor.card.model_id


def test_exif_orientation_is_applied(onnx_predictor: Predictor) -> None:
    upright = photo(60, 45)
    # Stored sideways with orientation 6 ("rotate 90 clockwise to view"): a viewer shows `upright`.
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    tagged = encode(sideways, "PNG", exif=exif)
    plain = encode(upright, "PNG")
    untagged = encode(sideways, "PNG")
    a, b, c = onnx_predictor.predict([tagged, plain, untagged], names=["tagged", "plain", "untagged"])
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-6)
    assert not np.allclose(c.probabilities, b.probabilities, atol=1e-6)


def test_no_images_give_no_predictions(onnx_predictor: Predictor) -> None:
    assert onnx_predictor.predict([]) == []


def test_tta_makes_predictions_invariant_to_rotation_and_flip(onnx_model: Path) -> None:
    image = photo(28, 28)  # the model's size: no resampling, whose rounding differs between views
    views = [
        image,
        image.transpose(Image.Transpose.ROTATE_90),
        image.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    ]
    data = [encode(view, "PNG") for view in views]
    with_tta = Predictor.load(onnx_model, tta=True).predict(data, names=["a", "b", "c"])
    without = Predictor.load(onnx_model, tta=False).predict(data, names=["a", "b", "c"])
    assert all(p.tta for p in with_tta)
    for other in with_tta[1:]:
        np.testing.assert_allclose(other.probabilities, with_tta[0].probabilities, atol=1e-5)
    assert not np.allclose(without[1].probabilities, without[0].probabilities, atol=1e-5)


def test_a_run_without_calibration_gives_raw_probabilities(trained_run: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(trained_run, tmp_path / "run")
    (copy / "calibration.json").unlink()
    data = encode(photo(), "PNG")
    raw = Predictor.load(copy)
    (uncalibrated,) = raw.predict([data])
    (calibrated,) = Predictor.load(trained_run).predict([data])
    assert not uncalibrated.calibrated and not raw.calibrated
    temperature = Run.open(trained_run).temperature()
    np.testing.assert_allclose(
        apply_temperature(np.array([uncalibrated.probabilities]), temperature)[0],
        calibrated.probabilities,
        atol=1e-6,
    )


def test_onnx_files_that_are_not_skin_pamper_exports_are_refused(onnx_model: Path, tmp_path: Path) -> None:
    import onnx

    graph = onnx.load(str(onnx_model))
    del graph.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(graph, str(bare))
    with pytest.raises(ConfigError, match=r"bare\.onnx: not a Skin Pamper export"):
        Predictor.load(bare)
    entry = graph.metadata_props.add()
    entry.key, entry.value = ONNX_METADATA_KEY, "{not json"
    broken = tmp_path / "broken.onnx"
    onnx.save(graph, str(broken))
    with pytest.raises(ConfigError, match=r"broken\.onnx: its 'skinpamper' metadata is not JSON"):
        Predictor.load(broken)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match=r"garbage\.onnx: not a readable ONNX model"):
        Predictor.load(garbage)
    with pytest.raises(ConfigError, match="not a run folder or an .onnx file"):
        Predictor.load(tmp_path / "bare.txt")


def test_model_card_refuses_another_class_order() -> None:
    card = ModelCard("m-1", "seed", 28, "squash", None).to_dict()
    assert ModelCard.from_dict(card, "x").classes == CODES
    with pytest.raises(ConfigError, match="x: model classes"):
        ModelCard.from_dict({**card, "classes": list(reversed(CODES))}, "x")


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    photo(seed=1).save(folder / "a.jpg")
    photo(seed=2).convert("RGBA").save(folder / "nested" / "b.PNG")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_cli_table_json_and_csv_carry_the_note(onnx_model: Path, image_folder: Path) -> None:
    runner = CliRunner()
    table = runner.invoke(main, ["predict", str(onnx_model), str(image_folder), "--top-k", "2"])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].startswith("model compact_cnn-") and "calibrated (T=" in lines[0]
    assert "no TTA" in lines[0]  # the default, as in Python
    assert lines[1].startswith("status: out_of_distribution when not dermoscopy (log-odds above ")
    assert lines[2].startswith("mel?: melanoma not ruled out when p(mel) >= ")
    assert lines[3].split() == ["image", "status", "mel?", "#1", "#2"]
    assert [line.split()[0].rsplit("/", 1)[-1] for line in lines[4:6]] == ["a.jpg", "b.PNG"]
    assert lines[-1] == NOT_A_DIAGNOSIS and "notes.txt" not in table.output

    as_json = runner.invoke(
        main, ["predict", str(onnx_model), str(image_folder), "--format", "json", "--no-tta"]
    )
    document = json.loads(as_json.output)
    assert document["note"] == NOT_A_DIAGNOSIS
    first, second = document["predictions"]
    assert first["image"].endswith("a.jpg") and second["image"].endswith("b.PNG")
    assert (
        list(first["probabilities"]) == list(CODES) and first["tta"] is False and first["calibrated"] is True
    )
    assert len(first["top_k"]) == 3 and first["top_k"][0]["class"] == first["top_class"]

    as_csv = runner.invoke(main, ["predict", str(onnx_model), str(image_folder / "a.jpg"), "--format", "csv"])
    (row,) = csv.DictReader(io.StringIO(as_csv.output))
    assert row["note"] == NOT_A_DIAGNOSIS and row["top_class"] in CODES
    assert abs(sum(float(row[f"p_{c}"]) for c in CODES) - 1) < 1e-4
    assert row["top_class"] == max(CODES, key=lambda c: float(row[f"p_{c}"])) and row["error"] == ""


def test_cli_reports_unreadable_files_and_still_predicts_the_rest(
    onnx_model: Path, image_folder: Path
) -> None:
    broken = image_folder / "broken.jpg"
    broken.write_bytes((image_folder / "a.jpg").read_bytes()[:100])
    result = CliRunner().invoke(main, ["predict", str(onnx_model), str(image_folder), "--format", "json"])
    assert result.exit_code == 1
    assert f"skipped: {broken}: " in result.stderr
    assert len(json.loads(result.stdout)["predictions"]) == 2


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's notes on EXIF it reads past
def test_cli_predicts_every_good_file_among_fuzzed_ones(onnx_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = {f"good-{name}": data for name, data in valid_files().items()}
    files = {**damaged_files(1000), **good}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "folder.jpg").mkdir()  # a folder named like an image is not one
    args = ["predict", str(onnx_model), str(folder), "--format", "json", "--no-tta", "--batch-size", "50"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    predicted = {Path(p["image"]).name for p in json.loads(result.stdout)["predictions"]}
    skipped = result.stderr.splitlines()
    assert all(line.startswith(f"skipped: {folder}/") for line in skipped), skipped[:3]
    skipped_names = {Path(line.removeprefix("skipped: ").split(": ")[0]).name for line in skipped}
    assert set(good) <= predicted
    assert predicted | skipped_names == set(files) and not predicted & skipped_names


def test_cli_with_no_images_says_so(onnx_model: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["predict", str(onnx_model), str(tmp_path)])
    assert result.exit_code == 1 and "no .jpg, .jpeg or .png files found" in result.output


def test_onnx_prediction_and_cli_need_no_keras(onnx_model: Path, trained_run: Path, tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    photo().save(image)
    done = run_without_keras(
        f"""
from click.testing import CliRunner
from skinpamper.cli import main
from skinpamper.cli.predict_commands import predict_command
from skinpamper.serving.predict import Predictor
(p,) = Predictor.load({str(onnx_model)!r}).predict([open({str(image)!r}, "rb").read()])
result = CliRunner().invoke(main, ["predict", {str(onnx_model)!r}, {str(image)!r}, "--format", "json"])
assert result.exit_code == 0, result.output
refused = CliRunner().invoke(main, ["predict", {str(trained_run)!r}, {str(image)!r}])
listing = CliRunner().invoke(main, ["models"])
assert listing.exit_code == 1 and "pip install 'skinpamper[train]'" in listing.output, listing.output
print(p.top_class, "keras" in sys.modules, "tensorflow" in sys.modules)
print(refused.output)
"""
    )
    assert done.returncode == 0, done.stderr
    first, refusal = done.stdout.split("\n", 1)
    assert first.split()[1:] == ["False", "False"]
    assert "a run folder needs Keras" in refusal and "skinpamper[train]" in refusal


def test_patient_metadata_is_combined_alike_by_both_backends(
    keras_predictor: Predictor, onnx_predictor: Predictor
) -> None:
    image = encode(photo(seed=4), "PNG")
    patient = PatientInfo(age=63, sex="male", site="face")
    for predictor in (keras_predictor, onnx_predictor):
        assert predictor.card.uses_metadata and predictor.metadata is not None
    (plain,) = onnx_predictor.predict([image])
    (keras_fused,) = keras_predictor.predict([image], patients=[patient])
    (onnx_fused,) = onnx_predictor.predict([image], ["photo"], [patient])
    evidence = onnx_predictor.metadata.log_likelihood(metadata_frame([patient]), "test")
    expected = fuse(np.array([plain.probabilities]), evidence)[0]
    np.testing.assert_allclose(onnx_fused.probabilities, expected, atol=1e-6)
    np.testing.assert_allclose(keras_fused.probabilities, expected, atol=1e-4)
    assert onnx_fused.with_metadata and not plain.with_metadata
    assert onnx_fused.to_dict()["with_metadata"] is True
    (unknown,) = onnx_predictor.predict([image], patients=[PatientInfo(sex="unknown")])
    assert unknown.probabilities == plain.probabilities and not unknown.with_metadata


def test_metadata_the_model_cannot_use_is_refused(
    onnx_predictor: Predictor, trained_run: Path, tmp_path: Path
) -> None:
    image = encode(photo(seed=4), "PNG")
    with pytest.raises(DataError, match="photo: unknown site 'elbow'; this model knows back, face"):
        onnx_predictor.predict([image], ["photo"], [PatientInfo(site="elbow")])
    without = tmp_path / "run"
    shutil.copytree(trained_run, without)
    (without / "metadata_model.json").unlink()
    predictor = Predictor.load(without)
    assert not predictor.card.uses_metadata
    assert predictor.predict([image])[0].with_metadata is False
    with pytest.raises(ConfigError, match="was trained without age, sex and site"):
        predictor.predict([image], patients=[PatientInfo(age=40)])


def test_cli_takes_one_patient_or_a_metadata_csv(
    onnx_model: Path, image_folder: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    one = ["predict", str(onnx_model), str(image_folder), "--format", "json", "--no-tta"]
    flags = runner.invoke(main, [*one, "--age", "70", "--sex", "Male", "--site", "face"])
    assert flags.exit_code == 0, flags.output
    assert [p["with_metadata"] for p in json.loads(flags.output)["predictions"]] == [True, True]

    table = tmp_path / "patients.csv"
    table.write_text("image_id,age,sex,localization\na,70,male,face\nzzz,30,,back\n")
    by_id = runner.invoke(main, [*one, "--metadata", str(table)])
    assert by_id.exit_code == 0, by_id.output
    first, second = json.loads(by_id.stdout)["predictions"]
    assert first["with_metadata"] and not second["with_metadata"]  # b.PNG has no row
    assert f"1 of 2 images have no row in {table}: predicted from the image alone" in by_id.stderr
    assert first["probabilities"] == json.loads(flags.output)["predictions"][0]["probabilities"]
    as_table = runner.invoke(main, ["predict", str(onnx_model), str(image_folder / "a.jpg"), "--age", "9"])
    assert "a.jpg (+ age/sex/site)" in as_table.output

    table.write_text("image_id,localization\na,elbow\n")
    bad = runner.invoke(main, [*one, "--metadata", str(table)])
    assert bad.exit_code == 1 and f"{table}: a: unknown site 'elbow'" in bad.output
    both = runner.invoke(main, [*one, "--metadata", str(table), "--age", "40"])
    assert both.exit_code == 2 and "not both" in both.output
    out_of_range = runner.invoke(main, [*one, "--age", "200"])
    assert out_of_range.exit_code == 2


def test_predict_and_the_python_predictor_default_to_the_same_tta() -> None:
    (option,) = [param for param in predict_command.params if param.name == "tta"]
    for function in (Predictor.load, Predictor.__init__):
        assert inspect.signature(function).parameters["tta"].default is option.default


def test_predictions_as_a_frame_have_the_columns_of_predict_out(
    onnx_predictor: Predictor, onnx_model: Path, image_folder: Path
) -> None:
    files = [image_folder / "a.jpg", image_folder / "nested" / "b.PNG"]
    predictions = onnx_predictor.predict(files)
    frame = onnx_predictor.predict(files, as_frame=True)
    assert list(frame.columns) == row_columns()
    assert frame.to_dict("records") == [prediction_row(p) for p in predictions]
    assert frame.loc[0, "top_class"] == predictions[0].top_class
    assert frame.loc[1, "status"] == predictions[1].status and frame["error"].isna().all()
    as_csv = CliRunner().invoke(main, ["predict", str(onnx_model), *map(str, files), "--format", "csv"])
    assert next(csv.reader(io.StringIO(as_csv.output))) == list(frame.columns)
    empty = onnx_predictor.predict([], as_frame=True)
    assert list(empty.columns) == row_columns() and empty.empty
