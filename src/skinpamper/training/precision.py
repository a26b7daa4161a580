"""Training precision: float32, or mixed bfloat16 where the CPU computes bfloat16 natively.

Mixed precision keeps every weight in float32 and runs the convolutions and matrix products in
bfloat16, which CPUs with AVX512-BF16 or AMX execute at up to twice the float32 rate. Where the CPU
lacks them bfloat16 is emulated and slower, so "auto" only picks it where it pays. Saved models for
prediction are always float32 (see `float32_copy`), so exports and predictions do not depend on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import keras

BF16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}  # instruction sets with native bfloat16 arithmetic
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True where the CPU flags list native bfloat16 arithmetic (Linux; False where unknown)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []
    )
    return bool(BF16_CPU_FLAGS.intersection(flags))


def resolve_precision(setting: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """ "float32" or "bfloat16": "auto" is bfloat16 on a CPU-only TensorFlow machine with native bf16."""
    if setting != "auto":
        return setting
    if keras.backend.backend() != "tensorflow":
        return "float32"  # bf16 speed-ups were only measured with TensorFlow's oneDNN kernels
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return "float32"
    return "bfloat16" if cpu_has_bf16(cpuinfo) else "float32"


@contextmanager
def precision_scope(precision: str) -> Iterator[None]:
    """Models created inside use `precision`'s Keras dtype policy; the previous policy comes back after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(POLICIES[precision])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def float32_copy(model: keras.Model, build: Callable[[], keras.Model]) -> keras.Model:
    """`model`'s weights in a float32 twin built by `build()`: what prediction and export load.

    Mixed-precision variables are float32 already, so the copy is exact.
    """
    if model.compute_dtype == "float32":
        return model
    with precision_scope("float32"):
        twin = build()
    twin.set_weights(model.get_weights())
    return twin
