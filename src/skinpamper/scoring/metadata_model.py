"""What a patient's age, sex and body site say about the diagnosis, added to the image model's answer.

Dermatologists read a lesion together with who has it and where: basal cell carcinoma and actinic
keratoses crowd on the sun-damaged faces of older patients, naevi on the trunks of younger ones. HAM10000
records age, sex and site for nearly every image, so a run fits a small logistic regression on them,
on its training split only, with balanced class weights. A balanced posterior is proportional to the
likelihood p(metadata | class), so Bayes' rule with metadata independent of the pixels given the class
gives p(class | image, metadata) ∝ p(class | image) · q(class | metadata): a product, which needs no
retraining of the image model and falls back to the image alone wherever the metadata is unknown.
On HAM10000 this raised test balanced accuracy by 0.016 on average over 24 run/split pairs (README).

The fitted model is a few hundred numbers in JSON: it travels in the run folder and inside the ONNX
export, and applying it needs NumPy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import softmax

from skinpamper.classes import NUM_CLASSES
from skinpamper.data.metadata import read_csv
from skinpamper.errors import DataError

MAX_AGE = 120
AGE_BAND = 5  # years: risk changes smoothly with age, bands let the fit bend where it must
AGE_BANDS = 18  # 0-4 ... 80-84, then 85 and over (HAM10000 records ages up to 85)
MISSING = ("", "unknown", "nan", "none")  # how metadata files spell "not recorded"


@dataclass(frozen=True)
class PatientInfo:
    """One image's metadata as a user gives it; every field may be unknown."""

    age: float | None = None
    sex: str | None = None
    site: str | None = None


def metadata_frame(infos: list[PatientInfo | None], names: list[str] | None = None) -> pd.DataFrame:
    """The Dataset.meta columns age, sex and localization from per-image PatientInfo, indexed by
    `names` (image ids or files) so that an error names the image."""
    rows = [info or PatientInfo() for info in infos]
    for i, row in enumerate(rows):
        # A given nan would read as "not recorded" below, and the user's input be silently ignored.
        if row.age is not None and not math.isfinite(row.age):
            where = names[i] if names is not None else f"row {i + 1}"
            raise DataError(f"{where}: age {row.age} is not a number of years from 0 to {MAX_AGE}")
    return pd.DataFrame(
        {
            "age": [np.nan if r.age is None else r.age for r in rows],
            "sex": [r.sex for r in rows],
            "localization": [r.site for r in rows],
        },
        index=names,
        dtype=object,
    )


def read_patient_table(path: Path) -> dict[str, PatientInfo]:
    """image_id -> PatientInfo from a CSV with HAM10000's columns (image_id, and any of age, sex,
    localization); other columns such as dx are ignored, so HAM10000_metadata.csv itself works."""
    table = read_csv(path, dtype={"image_id": str, "sex": str, "localization": str})
    if "image_id" not in table.columns or not {"age", "sex", "localization"} & set(table.columns):
        raise DataError(f"{path}: needs an image_id column and at least one of age, sex, localization")
    empty, twice = table["image_id"].isna().to_numpy(), table["image_id"].duplicated().to_numpy()
    if empty.any():
        raise DataError(f"{path}: line {empty.argmax() + 2}: empty image_id")
    if twice.any():
        row = twice.argmax()
        raise DataError(f"{path}: line {row + 2}: image_id {table['image_id'].iloc[row]} appears twice")
    table = table.set_index(table["image_id"])
    ages = read_ages(_column(table, "age"), str(path))
    sexes, sites = _categories(_column(table, "sex")), _categories(_column(table, "localization"))
    return {
        image_id: PatientInfo(None if np.isnan(age) else float(age), sex, site)
        for image_id, age, sex, site in zip(table["image_id"], ages, sexes, sites, strict=True)
    }


def _column(meta: pd.DataFrame, name: str) -> pd.Series:
    """One column, indexed by image_id where the table has one (so errors name the image)."""
    values = (
        meta[name] if name in meta.columns else pd.Series([None] * len(meta), index=meta.index, dtype=object)
    )
    if "image_id" in meta.columns and meta["image_id"].notna().all():
        values = values.set_axis(meta["image_id"].astype(str).to_numpy())
    return values


def _categories(values: pd.Series) -> np.ndarray:
    """Lower-cased, stripped strings, with every spelling of "not recorded" as None."""

    def clean(value: Any) -> str | None:
        text = None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
        return None if text is None or text.strip().lower() in MISSING else text.strip().lower()

    return np.array([clean(v) for v in values], dtype=object)


def _shown(value: Any) -> str:
    """A cell as a user typed it: strings quoted, numbers plain (not NumPy's repr)."""
    if isinstance(value, str):
        return repr(value)
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return repr(str(value))


def _where(values: pd.Series, row: int) -> str:
    """The image a bad value belongs to: its id where the table has them, else its 1-based row."""
    label = values.index[row]
    return f"row {label + 1}" if isinstance(label, int | np.integer) else str(label)


def _unseen(cleaned: np.ndarray, vocabulary: tuple[str, ...]) -> np.ndarray:
    return pd.notna(cleaned) & ~np.isin(cleaned.astype(str), vocabulary)


def read_ages(values: pd.Series, source: str) -> np.ndarray:
    """Ages in years as floats (NaN where not recorded); anything else raises DataError naming the row."""
    missing = pd.Series(_categories(values)).isna().to_numpy()
    ages = pd.to_numeric(values.where(~missing), errors="coerce").to_numpy(dtype=np.float64)
    bad = ~missing & (np.isnan(ages) | (ages < 0) | (ages > MAX_AGE))
    _refuse_first(bad, values, source, f"age {{value}} is not a number of years from 0 to {MAX_AGE}")
    return ages


def _refuse_first(bad: np.ndarray, values: pd.Series, source: str, problem: str) -> None:
    """DataError for the first flagged cell of `values`; `problem` shows the cell as {value}."""
    if bad.any():
        row = int(bad.nonzero()[0][0])
        raise DataError(
            f"{source}: {_where(values, row)}: " + problem.replace("{value}", _shown(values.iloc[row]))
        )


@dataclass(frozen=True)
class MetadataModel:
    """A multinomial logistic regression over age, sex and site, in canonical class order.

    The sex and site vocabularies are those of the training data, so HAM10000's sites and another
    archive's both work; a value the model never saw is refused rather than silently ignored.
    """

    sexes: tuple[str, ...]
    sites: tuple[str, ...]
    coef: tuple[tuple[float, ...], ...]  # (7, features)
    intercept: tuple[float, ...]  # (7,)
    n_train: int  # training images with any metadata

    def encode(self, meta: pd.DataFrame, source: str, strict: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Features (N, F) and a mask of rows that know at least one field.

        `strict` refuses a sex or site the model never saw (a user's input: likely a typo); otherwise
        such a value counts as unknown (a labelled set: a rare site may be missing from the training
        split, another archive may name sites its own way; `unseen` counts them for the record).
        """
        ages = read_ages(_column(meta, "age"), source)
        sexes = self._known(_column(meta, "sex"), self.sexes, "sex", source, strict)
        sites = self._known(_column(meta, "localization"), self.sites, "site", source, strict)
        known_age = ~np.isnan(ages)
        band = np.minimum(np.nan_to_num(ages) // AGE_BAND, AGE_BANDS - 1)
        features = np.concatenate(
            [
                np.nan_to_num(ages)[:, None] / 100.0,
                ~known_age[:, None],
                known_age[:, None] & (band[:, None] == np.arange(AGE_BANDS)),
                sexes[:, None] == np.array(self.sexes, dtype=object),
                sites[:, None] == np.array(self.sites, dtype=object),
            ],
            axis=1,
        ).astype(np.float64)
        known = known_age | pd.notna(sexes) | pd.notna(sites)
        return features, known

    @staticmethod
    def _known(
        values: pd.Series, vocabulary: tuple[str, ...], field: str, source: str, strict: bool
    ) -> np.ndarray:
        cleaned = _categories(values)
        bad = _unseen(cleaned, vocabulary)
        if not strict:
            return np.where(bad, None, cleaned)
        known = ", ".join(vocabulary) or "none"
        _refuse_first(
            bad, values, source, f"unknown {field} {{value}}; this model knows {known} (or leave it empty)"
        )
        return cleaned

    def unseen(self, meta: pd.DataFrame) -> dict[str, int]:
        """How many sex and site values of `meta` the model never saw (non-strict scoring ignores them)."""
        return {
            field: int(_unseen(_categories(_column(meta, column)), vocabulary).sum())
            for field, column, vocabulary in (
                ("sex", "sex", self.sexes),
                ("site", "localization", self.sites),
            )
        }

    def log_likelihood(self, meta: pd.DataFrame, source: str, strict: bool = True) -> np.ndarray:
        """(N, 7) log q(class | metadata) up to a constant per row; zeros where nothing is known."""
        features, known = self.encode(meta, source, strict)
        logits = features @ np.asarray(self.coef).T + np.asarray(self.intercept)
        logits -= logits.mean(axis=1, keepdims=True)  # a constant per row changes nothing after softmax
        return np.where(known[:, None], logits, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sexes": list(self.sexes),
            "sites": list(self.sites),
            "coef": [list(row) for row in self.coef],
            "intercept": list(self.intercept),
            "n_train": self.n_train,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> MetadataModel:
        """Rebuild from `to_dict` output, checking every shape."""
        try:
            model = cls(
                sexes=tuple(map(str, data["sexes"])),
                sites=tuple(map(str, data["sites"])),
                coef=tuple(tuple(float(v) for v in row) for row in data["coef"]),
                intercept=tuple(float(v) for v in data["intercept"]),
                n_train=int(data["n_train"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: malformed metadata model ({exc})") from None
        if not np.isfinite([*np.ravel(model.coef), *model.intercept]).all():
            raise DataError(f"{source}: metadata model holds a coefficient that is not a finite number")
        width = 2 + AGE_BANDS + len(model.sexes) + len(model.sites)
        rows = {len(row) for row in model.coef}
        if len(model.coef) != NUM_CLASSES or rows != {width} or len(model.intercept) != NUM_CLASSES:
            raise DataError(
                f"{source}: metadata model does not have {NUM_CLASSES} classes of {width} features"
            )
        return model


def fit_metadata_model(meta: pd.DataFrame, labels: np.ndarray, source: str) -> MetadataModel | None:
    """Fit on the rows that know any metadata (pass a training split); None when too few do."""
    from sklearn.linear_model import LogisticRegression

    sexes = tuple(sorted(set(_categories(_column(meta, "sex"))) - {None}))
    sites = tuple(sorted(set(_categories(_column(meta, "localization"))) - {None}))
    blank = MetadataModel(sexes, sites, (), (), 0)
    features, known = blank.encode(meta, source)
    present = np.unique(labels[known])
    if known.sum() < 2 * NUM_CLASSES or len(present) < 2:
        return None
    fit = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000)
    fit.fit(features[known], labels[known])
    rows, biases = fit.coef_, fit.intercept_
    if len(present) == 2:  # scikit-learn keeps one row for two classes: the second one's log-odds
        rows, biases = np.stack([-rows[0] / 2, rows[0] / 2]), np.array([-biases[0] / 2, biases[0] / 2])
    # A class the training split lacks gets the mean logit: no evidence for or against it.
    coef = np.tile(rows.mean(axis=0), (NUM_CLASSES, 1))
    intercept = np.full(NUM_CLASSES, biases.mean())
    coef[present], intercept[present] = rows, biases
    return MetadataModel(
        sexes, sites, tuple(map(tuple, coef.tolist())), tuple(intercept.tolist()), int(known.sum())
    )


def fuse(probs: np.ndarray, log_likelihood: np.ndarray) -> np.ndarray:
    """p(class | image) · q(class | metadata), renormalised; rows of zeros leave `probs` unchanged."""
    fused = softmax(np.log(np.clip(probs, 1e-12, 1.0)) + log_likelihood, axis=1)
    return np.where(log_likelihood.any(axis=1, keepdims=True), fused, probs)
