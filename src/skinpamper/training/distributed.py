"""Training across processes (one per host) with Keras 3's distribution API on the JAX backend.

`start(cluster)` joins the processes (`keras.distribution.initialize`, which starts JAX's distributed
runtime) and makes every model data-parallel over all their devices (`keras.distribution.DataParallel`):
weights are replicated, each step's global batch is split across the devices and the gradients are
averaged, so `batch_size` is the global batch and the learning rate means what it does on one device,
as with `training.devices`.

Each process feeds only its own slice of every global batch (`data_shard`, applied by the training
pipeline before any image is gathered or augmented). Validation and test scoring run in each process
on its own (`single_process`), identical everywhere, so that every process takes the same early-stopping
decision without any collective; only process 0 writes (`is_writer`).

Keras 3 does not support tf.distribute.MultiWorkerMirroredStrategy (keras-team/keras#20585), which is
why several hosts go through JAX and not TensorFlow.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import keras

from skinpamper.errors import ConfigError

# Flags first, then JAX's own variable (jax.distributed reads JAX_COORDINATOR_ADDRESS), then the names
# `keras.distribution.initialize` reads; JAX itself reads no process count or id outside SLURM, Open MPI,
# Kubernetes and Cloud TPU, so JAX_NUM_PROCESSES and JAX_PROCESS_ID are read here.
ENV = {
    "coordinator": ("JAX_COORDINATOR_ADDRESS", "KERAS_DISTRIBUTION_JOB_ADDRESSES"),
    "num_processes": ("JAX_NUM_PROCESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES"),
    "process_id": ("JAX_PROCESS_ID", "KERAS_DISTRIBUTION_PROCESS_ID"),
}
FLAGS = {"coordinator": "--coordinator", "num_processes": "--num-processes", "process_id": "--process-id"}


@dataclass(frozen=True)
class Cluster:
    """Where the processes meet and which one this is."""

    coordinator: str  # host:port of process 0
    num_processes: int
    process_id: int


def _setting(name: str, given: str | int | None) -> str:
    if given is not None:
        return str(given)
    for variable in ENV[name]:
        if os.environ.get(variable, "").strip():
            return os.environ[variable].strip()
    raise ConfigError(f"--distributed needs {FLAGS[name]} or ${ENV[name][0]}")


def resolve_cluster(coordinator: str | None, num_processes: int | None, process_id: int | None) -> Cluster:
    """The cluster from flags or environment; ConfigError naming what is missing or wrong."""
    backend = keras.backend.backend()
    if backend != "jax":
        raise ConfigError(
            f"--distributed needs the JAX backend (KERAS_BACKEND=jax, with `pip install 'jax[cpu]'` or "
            f"jax[cuda12]); KERAS_BACKEND is {backend}. On one machine with TensorFlow use --devices"
        )
    address = _setting("coordinator", coordinator).split(",")[0]
    host, _, port = address.rpartition(":")
    if not host or not port.isdecimal():
        raise ConfigError(f"--coordinator must be host:port (process 0's address), got {address!r}")
    counts = {}
    for name, given in (("num_processes", num_processes), ("process_id", process_id)):
        value = _setting(name, given)
        if not value.isdecimal():
            raise ConfigError(f"{FLAGS[name]} must be a whole number, got {value!r}")
        counts[name] = int(value)
    if counts["num_processes"] < 1 or counts["process_id"] >= counts["num_processes"]:
        raise ConfigError(
            f"--process-id {counts['process_id']} must be below --num-processes {counts['num_processes']}"
        )
    return Cluster(address, counts["num_processes"], counts["process_id"])


def start(cluster: Cluster, batch_size: int) -> None:
    """Join the other processes (blocks until all have joined) and train data-parallel on all devices."""
    import jax

    # Cross-process collectives on CPU (a CPU-only cluster, or tests on localhost) go through gloo;
    # GPUs use NCCL whatever this says.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize(cluster.coordinator, cluster.num_processes, cluster.process_id)
    replicas = jax.device_count()
    if batch_size % replicas:
        raise ConfigError(
            f"batch_size {batch_size} does not split evenly over {replicas} devices in "
            f"{cluster.num_processes} processes; choose a multiple of {replicas}"
        )
    # The pipeline shards the batches itself (data_shard), so Keras must not shard them again.
    keras.distribution.set_distribution(keras.distribution.DataParallel(auto_shard_dataset=False))


def data_shard() -> tuple[int, int]:
    """(this process's index, process count): the slice of each global batch this process feeds."""
    if keras.distribution.distribution() is None:
        return 0, 1
    import jax

    return jax.process_index(), jax.process_count()


def _multi_process() -> bool:
    return data_shard()[1] > 1


def is_writer() -> bool:
    """Whether this process writes the run folder: process 0, or the only one."""
    return data_shard()[0] == 0


@contextmanager
def single_process() -> Iterator[None]:
    """Predictions computed by this process alone, on the whole input it is given.

    Under a several-process distribution, predict would split its input across processes and return
    arrays no process can read whole.
    """
    if not _multi_process():
        yield
        return
    distribution = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(distribution)
