"""Which devices a run trains on: one, or several of one machine through `tf.distribute.MirroredStrategy`.

The global batch stays `batch_size` whatever the device count: each of N replicas gets batch_size / N
images per step and their gradients are averaged, so a step is the same step one device would take
and the learning rate needs no rescaling ("same learning rate as on one device"). A user who raises
the batch to fill more devices scales the learning rate with it themselves (the linear rule).

`SKINPAMPER_CPU_DEVICES=N` splits the host CPU into N logical devices, so that several-device training
can be run and tested on a machine without GPUs. It must act before the backend sets up its devices:
`skinpamper train` applies it first thing, and every function here applies it before listing devices.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import keras

from skinpamper.errors import ConfigError

CPU_DEVICES_ENV = "SKINPAMPER_CPU_DEVICES"
_JAX_FLAG = "--xla_force_host_platform_device_count"


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
