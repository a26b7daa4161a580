"""One flat row per image, the single shape of every table of predictions (CSV, parquet, Ray).

Rows are built from the Prediction dataclass's own fields, so a field added to Prediction (a status,
an out-of-distribution score) becomes a column of every table without a change here. An image that
could not be decoded gets a row too, with its error and nothing else, so a scored archive lists every
file it was given.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from skinpamper.classes import CODES
from skinpamper.serving.predict import Prediction, display_name

IMAGE, ERROR, MODEL_ID = "image", "error", "model_id"  # the columns every row has, ok or not
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def prediction_row(prediction: Prediction) -> dict[str, Any]:
    """image, error (None), top class and probability, p_<class> per class, then every other field."""
    row: dict[str, Any] = {  # an error row's columns first, in its order: any mix of rows keeps them
        IMAGE: display_name(prediction.image),
        ERROR: None,
        MODEL_ID: prediction.model_id,
        "top_class": prediction.top_class,
        "top_probability": max(prediction.probabilities),
    }
    for item in dataclasses.fields(prediction):
        value = getattr(prediction, item.name)
        if item.name == "probabilities":
            row.update({f"p_{code}": float(p) for code, p in zip(CODES, value, strict=True)})
        elif item.name not in (IMAGE, MODEL_ID):
            _flatten(row, item.name, value)
    return row


def row_columns() -> list[str]:
    """Every column a row can have, in order: a table streamed in pieces needs them before its rows."""
    blank = Prediction(image="", probabilities=(0.0,) * len(CODES), calibrated=False, tta=False, model_id="")
    return list(prediction_row(blank))


def prediction_frame(predictions: Sequence[Prediction]) -> pd.DataFrame:
    """A row per prediction with every column of `row_columns`, the columns of `predict --out`'s tables."""
    return pd.DataFrame([prediction_row(p) for p in predictions], columns=row_columns())


def error_row(image: str, error: str, model_id: str) -> dict[str, Any]:
    """The row of a file that could not be scored: its name, why, and the model that tried."""
    return {IMAGE: display_name(image), ERROR: error, MODEL_ID: model_id}


def csv_cell(text: str) -> str:
    """A user's text (a file name, an error naming it) as a CSV cell a spreadsheet shows, never runs.

    A leading ' makes the cell text; quotes already before a formula character get one more, so that
    `text_of_csv_cell` gives back exactly the text. Parquet and JSON keep the true text.
    """
    return "'" + text if text.lstrip("'").startswith(FORMULA_START) else text


def text_of_csv_cell(cell: str) -> str:
    """The text `csv_cell` was given."""
    return cell[1:] if cell.startswith("'") and cell.lstrip("'").startswith(FORMULA_START) else cell


def _flatten(row: dict[str, Any], name: str, value: Any) -> None:
    """Scalars as they are; mappings and dataclasses as name_key columns; sequences as JSON text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(row, f"{name}_{key}", inner)
    elif isinstance(value, enum.Enum):
        row[name] = value.value
    elif isinstance(value, list | tuple):
        row[name] = json.dumps(value)
    else:
        row[name] = value
