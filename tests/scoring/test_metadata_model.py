"""The metadata model: fitted on a training split, refuses values it never saw, and only shifts
probabilities where something about the patient is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skinpamper.classes import CODES
from skinpamper.data.dataset import empty_meta
from skinpamper.errors import DataError
from skinpamper.scoring.metadata_model import (
    MetadataModel,
    PatientInfo,
    fit_metadata_model,
    fuse,
    metadata_frame,
    read_patient_table,
)

BCC, NV = CODES.index("bcc"), CODES.index("nv")


def make_patients(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Every class; bcc on old faces, nv on young backs, the rest anywhere, some fields unknown."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CODES)
    ages = np.where(labels == BCC, 75.0, np.where(labels == NV, 25.0, rng.uniform(20, 80, n)))
    sites = np.where(labels == BCC, "face", np.where(labels == NV, "back", rng.choice(["trunk", "hand"], n)))
    meta = pd.DataFrame(
        {
            "age": np.where(np.arange(n) % 10 == 0, np.nan, ages),
            "sex": np.where(np.arange(n) % 2, "male", "unknown"),
            "localization": sites,
        }
    )
    return meta, labels


@pytest.fixture(scope="module")
def fitted() -> MetadataModel:
    meta, labels = make_patients()
    model = fit_metadata_model(meta, labels, "train.csv")
    assert model is not None
    return model


def test_fit_learns_the_vocabulary_and_where_classes_occur(fitted: MetadataModel) -> None:
    assert fitted.sexes == ("male",)  # "unknown" is a missing value, not a category
    assert fitted.sites == ("back", "face", "hand", "trunk")
    patients = metadata_frame([PatientInfo(76, "male", "face"), PatientInfo(24, None, "back")])
    evidence = fitted.log_likelihood(patients, "patients")
    assert evidence[0].argmax() == BCC
    assert evidence[1].argmax() == NV


def test_fusion_moves_probabilities_only_where_metadata_is_known(fitted: MetadataModel) -> None:
    probs = np.full((3, len(CODES)), 1 / len(CODES))
    patients = metadata_frame([PatientInfo(76, "male", "face"), None, PatientInfo(sex="unknown")])
    fused = fuse(probs, fitted.log_likelihood(patients, "patients"))
    assert fused[0].argmax() == BCC and fused[0, BCC] > probs[0, BCC]
    np.testing.assert_allclose(fused[1:], probs[1:])  # nothing known: the image alone
    np.testing.assert_allclose(fused.sum(axis=1), 1.0)


def test_strong_image_evidence_survives_weak_metadata(fitted: MetadataModel) -> None:
    probs = np.full((1, len(CODES)), 0.01 / 6)
    probs[0, NV] = 0.99
    fused = fuse(probs, fitted.log_likelihood(metadata_frame([PatientInfo(site="hand")]), "patients"))
    assert fused[0].argmax() == NV


@pytest.mark.parametrize(
    ("info", "message"),
    [
        (PatientInfo(site="elbow"), "row 1: unknown site 'elbow'; this model knows back, face, hand, trunk"),
        (PatientInfo(sex="female"), "unknown sex 'female'; this model knows male"),
        (PatientInfo(age=-3), "age -3 is not a number of years from 0 to 120"),
        (PatientInfo(age=130), "age 130 is not a number of years from 0 to 120"),
    ],
)
def test_values_the_model_never_saw_are_refused(
    fitted: MetadataModel, info: PatientInfo, message: str
) -> None:
    with pytest.raises(DataError, match=message):
        fitted.log_likelihood(metadata_frame([info]), "patients")


def test_case_and_missing_spellings_are_normalised(fitted: MetadataModel) -> None:
    spelled = pd.DataFrame(
        {"age": ["75", "", "unknown"], "sex": ["MALE", "nan", None], "localization": [" Face", "", "unknown"]}
    )
    evidence = fitted.log_likelihood(spelled, "patients")
    expected = fitted.log_likelihood(metadata_frame([PatientInfo(75, "male", "face")]), "patients")
    np.testing.assert_allclose(evidence[0], expected[0])
    assert not evidence[1:].any()


def test_round_trip_and_malformed_models(fitted: MetadataModel) -> None:
    assert MetadataModel.from_dict(fitted.to_dict(), "m.json") == fitted
    short = {**fitted.to_dict(), "coef": fitted.to_dict()["coef"][:3]}
    with pytest.raises(DataError, match="m.json: metadata model does not have 7 classes"):
        MetadataModel.from_dict(short, "m.json")
    with pytest.raises(DataError, match="m.json: malformed metadata model"):
        MetadataModel.from_dict({"coef": []}, "m.json")


def test_an_age_given_as_nan_is_refused_not_read_as_unknown() -> None:
    for age in (float("nan"), float("inf")):
        with pytest.raises(DataError, match=f"a.jpg: age {age} is not a number of years from 0 to 120"):
            metadata_frame([PatientInfo(age=age)], ["a.jpg"])


def test_coefficients_must_be_finite(fitted: MetadataModel) -> None:
    saved = fitted.to_dict()
    saved["intercept"] = [float("nan"), *saved["intercept"][1:]]
    with pytest.raises(DataError, match="m.json: metadata model holds a coefficient that is not a finite"):
        MetadataModel.from_dict(saved, "m.json")


def test_data_without_metadata_gives_no_model() -> None:
    labels = np.arange(70) % len(CODES)
    assert fit_metadata_model(empty_meta(70), labels, "hmnist.csv") is None


def test_a_class_the_training_split_lacks_gets_no_evidence_either_way() -> None:
    meta, labels = make_patients()
    keep = np.isin(labels, [BCC, NV, CODES.index("mel")])
    model = fit_metadata_model(meta[keep].reset_index(drop=True), labels[keep], "train.csv")
    assert model is not None
    evidence = model.log_likelihood(metadata_frame([PatientInfo(50, "male", "trunk")]), "patients")[0]
    absent = [i for i, code in enumerate(CODES) if code not in ("bcc", "nv", "mel")]
    np.testing.assert_allclose(evidence[absent], evidence[absent[0]])


def test_patient_table_reads_ham10000_metadata(tmp_path: Path) -> None:
    path = tmp_path / "patients.csv"
    path.write_text("image_id,dx,age,sex,localization\nISIC_1,nv,45,female,back\nISIC_2,mel,,unknown,\n")
    table = read_patient_table(path)
    assert table == {"ISIC_1": PatientInfo(45.0, "female", "back"), "ISIC_2": PatientInfo(None, None, None)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("image_id,age\nISIC_1,40\nISIC_1,41\n", "line 3: image_id ISIC_1 appears twice"),
        ("image_id,age\nISIC_1,40\n,41\n", "line 3: empty image_id"),
        ("image_id,age\nISIC_1,old\n", "ISIC_1: age 'old' is not a number of years"),
        ("image_id,age\nISIC_1,inf\n", "ISIC_1: age inf is not a number of years"),
        ("image_id,age\nISIC_1,-inf\n", "ISIC_1: age -inf is not a number of years"),
        ("name,age\nISIC_1,40\n", "needs an image_id column and at least one of age, sex, localization"),
    ],
)
def test_bad_patient_tables_name_the_file_and_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "patients.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=f"{path}: .*{message}"):
        read_patient_table(path)


def test_errors_name_the_image_when_it_is_known(fitted: MetadataModel) -> None:
    patients = metadata_frame([PatientInfo(site="back"), PatientInfo(site="elbow")], ["a.jpg", "b.jpg"])
    with pytest.raises(DataError, match="patients: b.jpg: unknown site 'elbow'"):
        fitted.log_likelihood(patients, "patients")
    meta = pd.DataFrame({"image_id": ["ISIC_7", "ISIC_8"], "age": [40, 300]})
    with pytest.raises(DataError, match="meta.csv: ISIC_8: age 300 is not"):
        fitted.log_likelihood(meta, "meta.csv")


def test_scoring_a_labelled_set_counts_unseen_values_as_unknown(fitted: MetadataModel) -> None:
    """A rare site missing from the training split, or another archive's names, must not stop an
    evaluation: those values carry no evidence, and `unseen` says how many there were."""
    meta = metadata_frame(
        [PatientInfo(76, "male", "face"), PatientInfo(76, "male", "elbow"), PatientInfo(site="elbow")]
    )
    evidence = fitted.log_likelihood(meta, "external", strict=False)
    age_and_sex = fitted.log_likelihood(metadata_frame([PatientInfo(76, "male")]), "external")[0]
    np.testing.assert_allclose(evidence[1], age_and_sex)
    assert not evidence[2].any()
    assert fitted.unseen(meta) == {"sex": 0, "site": 2}
