"""The seven HAM10000 diagnoses and how each file format numbers them.

Canonical order is alphabetical by code (the ISIC 2018 and DermaMNIST order); every label array in
Skin Pamper uses it. The hmnist CSVs number the classes differently, so readers map through here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Diagnosis:
    """One class: its HAM10000 code, a readable name and whether it is malignant."""

    code: str
    name: str
    malignant: bool


CLASSES: tuple[Diagnosis, ...] = (
    Diagnosis("akiec", "actinic keratoses and intraepithelial carcinoma", True),
    Diagnosis("bcc", "basal cell carcinoma", True),
    Diagnosis("bkl", "benign keratosis-like lesions", False),
    Diagnosis("df", "dermatofibroma", False),
    Diagnosis("mel", "melanoma", True),
    Diagnosis("nv", "melanocytic nevi", False),
    Diagnosis("vasc", "vascular lesions", False),
)
CODES: tuple[str, ...] = tuple(d.code for d in CLASSES)
NUM_CLASSES = len(CLASSES)
INDEX: dict[str, int] = {code: i for i, code in enumerate(CODES)}

# Kaggle hmnist `label` column: 0 akiec, 1 bcc, 2 bkl, 3 df, 4 nv, 5 vasc, 6 mel (not alphabetical).
HMNIST_CODES: tuple[str, ...] = ("akiec", "bcc", "bkl", "df", "nv", "vasc", "mel")

# DermaMNIST labels, in the order of medmnist's INFO["dermamnist"]["label"] (checked by a test against
# the medmnist package itself). It happens to equal the canonical order.
DERMAMNIST_NAMES: tuple[str, ...] = (
    "actinic keratoses and intraepithelial carcinoma",
    "basal cell carcinoma",
    "benign keratosis-like lesions",
    "dermatofibroma",
    "melanoma",
    "melanocytic nevi",
    "vascular lesions",
)
_BY_NAME = {d.name: d.code for d in CLASSES}
DERMAMNIST_CODES: tuple[str, ...] = tuple(_BY_NAME[name] for name in DERMAMNIST_NAMES)


def codes_to_labels(codes: np.ndarray | list[str]) -> np.ndarray:
    """Map HAM10000 dx codes to canonical integer labels; unknown codes raise KeyError."""
    return np.array([INDEX[c] for c in codes], dtype=np.int64)


def remap(labels: np.ndarray, source_codes: tuple[str, ...]) -> np.ndarray:
    """Convert integer labels numbered by `source_codes` into canonical labels."""
    lookup = np.array([INDEX[c] for c in source_codes], dtype=np.int64)
    return lookup[labels]
