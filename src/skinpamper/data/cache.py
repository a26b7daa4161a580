"""An on-disk cache of decoded Datasets, keyed by source content and load options.

Hashing a 92 MB CSV or 10,000 JPEGs on every load would cost more than the cache saves, so file
digests are remembered per (path, size, mtime) the way git's index does: a file is re-hashed only
when its size or modification time changes. Cache files are written atomically (temp file, then
rename), so an interrupted first load leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from skinpamper.atomic import write_bytes_atomic
from skinpamper.data.dataset import Dataset

FORMAT_VERSION = 1


class DigestIndex:
    """Remembers each file's content digest by path, size and mtime (git-index style)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.entries: dict[str, list] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.entries = {}
        self.dirty = False

    def digest(self, file: Path) -> str:
        """The blake2b digest of `file`, computed only when its stat changed."""
        st = file.stat()
        key = str(file.resolve())
        entry = self.entries.get(key)
        if entry and entry[0] == st.st_size and entry[1] == st.st_mtime_ns:
            return entry[2]
        with file.open("rb") as handle:
            value = hashlib.file_digest(handle, "blake2b").hexdigest()
        self.entries[key] = [st.st_size, st.st_mtime_ns, value]
        self.dirty = True
        return value

    def save(self) -> None:
        if self.dirty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(self.path, json.dumps(self.entries).encode())
            self.dirty = False


def cache_key(files: Iterable[Path], options: dict, index: DigestIndex) -> str:
    """A key that changes whenever any source file's content or any load option changes."""
    digest = hashlib.sha256(json.dumps({"v": FORMAT_VERSION, **options}, sort_keys=True).encode())
    for file in sorted(files):
        digest.update(file.name.encode())
        digest.update(index.digest(file).encode())
    return digest.hexdigest()[:32]


def save_dataset(path: Path, dataset: Dataset) -> None:
    """Write a Dataset as one uncompressed .npz (arrays load in milliseconds)."""
    buffer = io.BytesIO()
    arrays = {
        "images": dataset.images,
        "labels": dataset.labels,
        "meta_csv": np.array(dataset.meta.to_csv(index=False)),
        "source": np.array(dataset.source),
    }
    if dataset.official_split is not None:
        arrays["official_split"] = dataset.official_split.astype(str)
    np.savez(buffer, **arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, buffer.getvalue())


def load_cached(path: Path) -> Dataset | None:
    """Read a cached Dataset, or None when absent or unreadable (it is then rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = pd.read_csv(io.StringIO(str(data["meta_csv"])), dtype={"image_id": str, "lesion_id": str})
            split = data["official_split"] if "official_split" in data.files else None
            return Dataset(data["images"], data["labels"], meta, str(data["source"]), split)
    except (OSError, ValueError, KeyError):
        return None
