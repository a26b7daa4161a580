"""Training precision and XLA compilation: what "auto" picks on the machine at hand, and why.

Mixed precision keeps every weight in float32 and runs the convolutions and matrix products in a
16-bit type. GPUs from NVIDIA's Ampere generation on (compute capability 8.0) and CPUs with
AVX512-BF16 or AMX compute bfloat16 natively; older GPUs have fast float16 only, which needs loss
scaling (Keras wraps the optimizer in a LossScaleOptimizer when the policy is mixed_float16). Where
neither exists a 16-bit type is emulated and slower, so "auto" keeps float32. Saved models for
prediction are always float32 (see `float32_copy`), so exports and predictions do not depend on it.
What the hardware can do is asked of `training.devices`; the choice it leads to is made here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import keras

from skinpamper.training.devices import CPUINFO, Accelerator, cpu_has_bf16, find_accelerator

POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def resolve_precision(
    setting: str,
    cpuinfo: Path = CPUINFO,
    accelerator: Accelerator | None = None,
    cpu_bfloat16: bool = True,
) -> str:
    """ "float32", "bfloat16" or "float16" for a setting that may be "auto".

    "auto": on a GPU, bfloat16 from compute capability 8.0 on (no loss scaling needed), float16 with
    loss scaling before; on a CPU, bfloat16 where it is native and TensorFlow's oneDNN kernels use
    it (the only CPU path measured faster), else float32. `cpu_bfloat16=False` (the model declares
    that its layers are slower in bf16 on a CPU) keeps float32 there.
    """
    if setting != "auto":
        return setting
    found = accelerator if accelerator is not None else find_accelerator()
    if found.gpu is not None:
        return "bfloat16" if found.native_bf16 else "float16"
    if keras.backend.backend() != "tensorflow":
        return "float32"
    return "bfloat16" if cpu_bfloat16 and cpu_has_bf16(cpuinfo) else "float32"


def resolve_jit_compile(setting: str, accelerator: Accelerator | None = None) -> bool | str:
    """`jit_compile` for model.compile: "on" is True, "off" False; "auto" is False on a CPU-only
    TensorFlow machine and Keras's own "auto" elsewhere.

    On these 2 AVX-512/AMX cores XLA made the seed CNN (28 px, batch 64) train 2.7x slower in float32
    (161 against 427 images/s) and 4.5x slower in bfloat16 (159 against 724), because TensorFlow's
    oneDNN kernels are faster than XLA's CPU code: off. On GPUs Keras's "auto" compiles with XLA
    (except under tf.distribute, where Keras turns it off) and JAX always compiles; benchmarks/gpu.py
    measures it there.
    """
    if setting != "auto":
        return setting == "on"
    found = accelerator if accelerator is not None else find_accelerator()
    if keras.backend.backend() == "tensorflow" and found.gpu is None:
        return False
    return "auto"


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
