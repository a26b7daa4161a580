"""What hardware this machine has, and which devices a run trains on: one, or several of one machine
through `tf.distribute.MirroredStrategy`.

Every device query lives here: the devices the backend lists (`skinpamper env`), the accelerator and
its compute capability (precision "auto"), the device a run records in environment.json, and the CPU's
bf16 instructions. They are asked of the Keras backend and /proc/cpuinfo, never of nvidia-smi.

The global batch stays `batch_size` whatever the device count: each of N replicas gets batch_size / N
images per step and their gradients are averaged, so a step is the same step one device would take
and the learning rate needs no rescaling ("same learning rate as on one device"). A user who raises
the batch to fill more devices scales the learning rate with it themselves (the linear rule).

`SKINPAMPER_CPU_DEVICES=N` splits the host CPU into N logical devices, so that several-device training
can be run and tested on a machine without GPUs. It must act before the backend sets up its devices:
`skinpamper train` and `skinpamper env` apply it first thing, and `available_devices` before it lists
devices.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import keras

from skinpamper.errors import ConfigError

CPU_DEVICES_ENV = "SKINPAMPER_CPU_DEVICES"
_JAX_FLAG = "--xla_force_host_platform_device_count"
CPUINFO = Path("/proc/cpuinfo")
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # instruction sets with native bfloat16 arithmetic
BF16_GPU_CAPABILITY = (8, 0)  # Ampere: the first NVIDIA GPUs with bfloat16 tensor cores


class Accelerator(NamedTuple):
    """The first GPU the backend sees (capability as (major, minor)), or None on a CPU-only machine."""

    gpu: str | None
    capability: tuple[int, int] | None

    @property
    def native_bf16(self) -> bool:
        """Whether the GPU computes bfloat16 natively (Ampere on); False where the backend does not say."""
        return self.capability is not None and self.capability >= BF16_GPU_CAPABILITY


class Cpu(NamedTuple):
    """The CPU as /proc/cpuinfo describes it, with the cores this process may use."""

    model: str
    cores: int | None
    flags: frozenset[str]

    @property
    def native_bf16(self) -> bool:
        return bool(BF16_CPU_FLAGS & self.flags)


def describe_cpu(cpuinfo: Path = CPUINFO) -> Cpu:
    """Model name and instruction-set flags of the first processor listed (Linux; empty where unknown)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    # The cores this process may use, which a container or taskset can make fewer than the machine's.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return Cpu(fields.get("model name", "unknown"), cores, frozenset(fields.get("flags", "").split()))


def cpu_has_bf16(cpuinfo: Path = CPUINFO) -> bool:
    """True where the CPU flags list native bfloat16 arithmetic (Linux; False where unknown)."""
    return describe_cpu(cpuinfo).native_bf16


def _capability(text: str | tuple | None) -> tuple[int, int] | None:
    """(major, minor) from "8.6" or (8, 6); None where the backend does not say."""
    if text is None:
        return None
    parts = str(text).split(".") if isinstance(text, str) else list(text)
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except (ValueError, IndexError):
        return None


def find_accelerator() -> Accelerator:
    """The GPU the Keras backend will train on, asked of the backend itself."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return Accelerator(None, None)
        details = tf.config.experimental.get_device_details(gpus[0])
        return Accelerator(
            details.get("device_name", gpus[0].name), _capability(details.get("compute_capability"))
        )
    if backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        if not gpus:
            return Accelerator(None, None)
        return Accelerator(gpus[0].device_kind, _capability(getattr(gpus[0], "compute_capability", None)))
    if backend == "torch":
        import torch

        if not torch.cuda.is_available():
            return Accelerator(None, None)
        return Accelerator(torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))
    return Accelerator(None, None)


def device_name() -> str:
    """The device environment.json records: the accelerator Keras trains on (a TPU too), or the CPU."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    elif backend == "jax":
        import jax

        if jax.default_backend() != "cpu":
            return jax.devices()[0].device_kind
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores)"


def list_devices() -> dict[str, Any]:
    """Device names as the backend lists them; `accelerators` are the GPUs (or TPUs) among them."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        physical = tf.config.list_physical_devices()
        accelerators = []
        for device in physical:
            if device.device_type != "CPU":
                details = tf.config.experimental.get_device_details(device)
                capability = details.get("compute_capability")
                accelerators.append(
                    details.get("device_name", device.name)
                    + (f" (compute capability {capability[0]}.{capability[1]})" if capability else "")
                )
        return {
            "physical": [device.name.removeprefix("/physical_device:") for device in physical],
            "logical": [device.name.removeprefix("/device:") for device in tf.config.list_logical_devices()],
            "accelerators": accelerators,
        }
    if backend == "jax":
        import jax

        devices = jax.devices()
        return {
            "physical": [str(device) for device in devices],
            "logical": None,
            "accelerators": [device.device_kind for device in devices if device.platform != "cpu"],
        }
    if backend == "torch":
        import torch

        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return {
            "physical": ["cpu", *(f"cuda:{i}" for i in range(len(gpus)))],
            "logical": None,
            "accelerators": gpus,
        }
    return {"physical": ["cpu"], "logical": None, "accelerators": []}  # numpy and openvino: CPU only


def requested_cpu_devices() -> int | None:
    """The count SKINPAMPER_CPU_DEVICES asks for, None when unset."""
    value = os.environ.get(CPU_DEVICES_ENV, "").strip()
    if not value:
        return None
    if not value.isdecimal() or int(value) < 1:
        raise ConfigError(f"{CPU_DEVICES_ENV} must be a whole number of at least 1, got {value!r}")
    return int(value)


def split_host_cpu() -> None:
    """Apply SKINPAMPER_CPU_DEVICES to the backend; a no-op when unset or already applied."""
    count = requested_cpu_devices()
    if count is None or count == 1:
        return
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        current = tf.config.get_logical_device_configuration(cpu)
        if current is not None and len(current) == count:
            return
        try:
            tf.config.set_logical_device_configuration(cpu, wanted)
        except RuntimeError:  # TensorFlow has set up its devices already: too late in this process
            raise ConfigError(
                f"{CPU_DEVICES_ENV}={count}: TensorFlow had already started with "
                f"{len(tf.config.list_logical_devices('CPU'))} CPU device(s); set it before starting Python"
            ) from None
    elif backend == "jax":
        # Read when JAX creates its CPU client (the first device query), not at import.
        flags = os.environ.get("XLA_FLAGS", "")
        if _JAX_FLAG not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {_JAX_FLAG}={count}".strip()


def available_devices() -> list[str]:
    """Names of the devices `--devices` counts: the GPUs where there are any, else the (logical) CPUs."""
    split_host_cpu()
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        found = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return [device.name for device in found]
    if backend == "jax":
        import jax

        return [str(device) for device in jax.local_devices()]
    import torch

    return [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"]


def resolve_device_count(setting: str | int) -> int:
    """`--devices all|N` as a count, refused where this machine or backend cannot honour it."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ConfigError(
            f"--devices needs the TensorFlow backend (KERAS_BACKEND is {backend}); "
            + ("on JAX, train with --distributed" if backend == "jax" else "unset KERAS_BACKEND")
        )
    found = available_devices()
    if str(setting) == "all":
        return len(found)
    count = int(setting) if str(setting).isdecimal() else 0
    if count < 1:
        raise ConfigError(f"--devices must be 'all' or a whole number of at least 1, got {setting!r}")
    if count > len(found):
        kind = "GPU" if "GPU" in found[0] else "CPU"
        raise ConfigError(
            f"--devices {count}: this machine has {len(found)} {kind} device(s) ({', '.join(found)})"
            + (f"; {CPU_DEVICES_ENV}=N splits the CPU into N" if kind == "CPU" else "")
        )
    return count


def check_devices(count: int) -> None:
    """ConfigError unless `count` devices can train here (a library call, or a run resumed elsewhere)."""
    if count > 1:
        resolve_device_count(count)


def _strategy(count: int) -> Any:
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(devices=available_devices()[:count])


@contextmanager
def device_scope(count: int) -> Iterator[None]:
    """Models built, loaded, compiled and fitted inside train on `count` devices (1: as Keras places them).

    Saved models hold plain variables: they load and predict without any strategy.
    """
    if count == 1:
        yield
        return
    with _strategy(count).scope():
        yield


def placement_record(count: int) -> dict[str, Any]:
    """What environment.json records about the devices a run trained on."""
    distribution = keras.distribution.distribution()
    if distribution is not None:  # several processes (training.distributed), JAX only
        import jax

        devices = [str(device) for device in distribution.device_mesh.devices.flat]
        name = type(distribution).__name__
        return {
            "strategy": name,
            "replicas": len(devices),
            "processes": jax.process_count(),
            "devices": devices,
        }
    devices = available_devices()[:count]
    strategy = "MirroredStrategy" if count > 1 else None
    return {"strategy": strategy, "replicas": count, "processes": 1, "devices": devices}
