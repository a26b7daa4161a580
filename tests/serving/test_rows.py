"""One flat row per prediction: every field of Prediction, including fields added later, is a column."""

from __future__ import annotations

import dataclasses
import json

from skinpamper import NOT_A_DIAGNOSIS
from skinpamper.classes import CODES
from skinpamper.serving.predict import Prediction
from skinpamper.serving.rows import error_row, prediction_row, row_columns

PROBABILITIES = (0.1, 0.05, 0.05, 0.1, 0.5, 0.15, 0.05)


def test_a_row_has_every_class_and_every_field() -> None:
    row = prediction_row(Prediction("a.jpg", PROBABILITIES, True, False, "m-1"))
    # an error row's columns lead, in its order, so tables mixing both keep one column order
    assert list(row)[:5] == ["image", "error", "model_id", "top_class", "top_probability"]
    assert row["top_class"] == "mel" and row["top_probability"] == 0.5 and row["error"] is None
    assert [row[f"p_{code}"] for code in CODES] == list(PROBABILITIES)
    assert row["note"] == NOT_A_DIAGNOSIS and row["model_id"] == "m-1" and row["with_metadata"] is False


def test_fields_added_to_prediction_become_columns_without_a_change_here() -> None:
    # What a later Prediction may carry (an out-of-distribution status, a score and its thresholds).
    extended = dataclasses.make_dataclass(
        "Extended",
        [("status", str, "uncertain"), ("ood", dict, None), ("flags", tuple, ())],
        bases=(Prediction,),
        frozen=True,
    )
    prediction = extended(
        "a.jpg", PROBABILITIES, True, False, "m-1", ood={"score": 3.5, "limit": 2.0}, flags=(1,)
    )
    row = prediction_row(prediction)
    assert row["status"] == "uncertain" and row["ood_score"] == 3.5 and row["ood_limit"] == 2.0
    assert json.loads(row["flags"]) == [1]


def test_row_columns_list_every_column_of_a_prediction_row() -> None:
    row = prediction_row(Prediction("a.jpg", PROBABILITIES, True, False, "m-1"))
    assert row_columns() == list(row) and "status" in row_columns()


def test_an_error_row_names_the_file_and_the_model() -> None:
    assert error_row("b.png", "b.png: not a readable image", "m-1") == {
        "image": "b.png",
        "error": "b.png: not a readable image",
        "model_id": "m-1",
    }
