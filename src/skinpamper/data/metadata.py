"""Read and validate `HAM10000_metadata.csv` (lesion_id, image_id, dx, dx_type, age, sex, localization)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from skinpamper.classes import CODES
from skinpamper.errors import DataError

REQUIRED = ("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization")
METADATA_NAME = "HAM10000_metadata.csv"


def read_csv(path: Path, **kwargs) -> pd.DataFrame:
    """pandas.read_csv with file errors turned into one-line DataErrors naming the file.

    utf-8-sig: Excel saves "CSV UTF-8" with a byte-order mark, which would otherwise become part of
    the first column's name (`\ufeffimage_id`), and the file would be "missing" its first column.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        table = pd.read_csv(path, **{"encoding": "utf-8-sig", **kwargs})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from exc
    if len(table.columns) == 1:
        check_commas(path, str(table.columns[0]))
    return table


def check_commas(path: Path, header: str) -> None:
    """Refuse a header that looks like `image_id;dx`: a spreadsheet in a comma-decimal locale saves so."""
    if ";" in header and "," not in header:
        raise DataError(
            f"{path}: looks semicolon-separated (header {header.strip()!r}); "
            "save it with commas as separators"
        )


def check_dx(path: Path, dx: pd.Series) -> None:
    """Refuse a dx column holding anything but the seven HAM10000 codes, naming the first bad line."""
    bad = ~dx.isin(CODES)
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise DataError(
            f"{path}: line {row + 2}: unknown dx code {dx.iloc[row]!r}; expected one of {', '.join(CODES)}"
        )


def read_metadata(path: Path) -> pd.DataFrame:
    """The metadata table, checked for required columns, unique image ids and known dx codes."""
    meta = read_csv(path, dtype={"lesion_id": str, "image_id": str, "dx": str})
    missing = [c for c in REQUIRED if c not in meta.columns]
    if missing:
        raise DataError(f"{path}: missing columns {missing}; expected {', '.join(REQUIRED)}")
    if meta["image_id"].isna().any():
        row = int(meta["image_id"].isna().to_numpy().nonzero()[0][0])
        raise DataError(f"{path}: line {row + 2}: empty image_id")
    duplicated = meta["image_id"].duplicated()
    if duplicated.any():
        row = int(duplicated.to_numpy().nonzero()[0][0])
        raise DataError(f"{path}: line {row + 2}: image_id {meta['image_id'].iloc[row]} appears twice")
    check_dx(path, meta["dx"])
    meta["age"] = pd.to_numeric(meta["age"], errors="coerce")
    # "unknown" is how HAM10000 spells a missing value in sex and localization; a file edited by hand
    # may say Male or UNKNOWN, which must count as male and as missing.
    for column in ("sex", "localization"):
        values = meta[column].str.strip().str.lower()
        meta[column] = values.where(values != "unknown")
    return meta.reset_index(drop=True)


def find_metadata(folder: Path) -> Path | None:
    """HAM10000_metadata.csv in `folder`, or None."""
    candidate = folder / METADATA_NAME
    return candidate if candidate.is_file() else None
