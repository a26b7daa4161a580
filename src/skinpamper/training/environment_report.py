"""What `skinpamper env` reports: the facts that decide how fast training runs, gathered offline.

The first thing to look at when training is slow: which Keras backend and versions are installed,
which devices the backend sees (a GPU TensorFlow cannot find leaves training on the CPU), the precision
and XLA setting training will use, the CPU's bf16 instructions, and whether the ImageNet weights
are already in the Keras cache (otherwise the first pretrained run downloads them). Nothing is
downloaded, built or trained: only the backend's device listing, file checks and /proc/cpuinfo.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import keras

from skinpamper.errors import ConfigError
from skinpamper.models.applications import BACKBONES, weights_cache_path
from skinpamper.training.devices import CPU_DEVICES_ENV, CPUINFO, describe_cpu, list_devices, split_host_cpu
from skinpamper.training.precision import resolve_jit_compile, resolve_precision
from skinpamper.training.run import environment_info

# CPU instruction sets that decide float32 and bf16 speed (oneDNN picks its kernels by them).
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def environment_report(cpuinfo: Path = CPUINFO) -> dict[str, Any]:
    """Everything `skinpamper env` prints, as JSON-ready data."""
    backend = keras.backend.backend()
    try:
        split_host_cpu()  # before anything asks the backend for devices, as `skinpamper train` does
        unapplied = None
    except ConfigError as exc:  # a diagnosis reports what it cannot change rather than failing
        unapplied = str(exc)
    recorded = environment_info()  # what each run's environment.json records
    devices = list_devices()
    return {
        "skinpamper": recorded["packages"].get("skinpamper"),
        "python": recorded["python"],
        "os": recorded["os"],
        "keras": keras.__version__,
        "keras_backend": backend,
        "backend_version": _module_version(backend),  # each backend is named for its module
        "numpy": _module_version("numpy"),
        "packages": recorded["packages"],
        "git_commit": recorded["git_commit"],
        "devices": devices,
        "trains_on": recorded["device"],
        "precision_auto": resolve_precision("auto", cpuinfo),
        "jit_compile": _jit(backend, bool(devices["accelerators"])),
        "cpu": _cpu(cpuinfo),
        "cpu_devices_variable": {
            "name": CPU_DEVICES_ENV,
            "value": os.environ.get(CPU_DEVICES_ENV),
            "not_applied": unapplied,
        },
        "imagenet_weights": {
            name: _cached(weights_cache_path(backbone)) for name, backbone in BACKBONES.items()
        },
    }


def format_environment_report(report: dict[str, Any]) -> str:
    """The report as the lines `skinpamper env` prints."""
    devices = report["devices"]
    cpu = report["cpu"]
    jit = report["jit_compile"]
    variable = report["cpu_devices_variable"]
    lines = [
        f"skinpamper {report['skinpamper']}  python {report['python']}  {report['os']}",
        f"keras {report['keras']}  backend {report['keras_backend']} {report['backend_version']}  "
        f"numpy {report['numpy']}",
        f"devices the backend sees: {', '.join(devices['physical']) or 'none'}",
    ]
    if devices["logical"] is not None:
        lines.append(f"logical devices: {', '.join(devices['logical'])}")
    lines += [
        f"accelerators: {', '.join(devices['accelerators']) or 'none (training runs on the CPU)'}",
        f"training runs on: {report['trains_on']}",
        f'precision "auto" picks: {report["precision_auto"]}',
        f"XLA (jit_compile): {jit['setting']} -> {'on' if jit['xla'] else 'off'} ({jit['rule']})",
        f"CPU: {cpu['model']}, {cpu['cores']} cores usable; native bf16: {_yes(cpu['native_bf16'])}",
        f"CPU flags: {', '.join(cpu['flags']) or 'none of ' + ', '.join(CPU_FLAGS)}",
        f"{variable['name']}: {variable['value'] if variable['value'] is not None else 'not set'}"
        + (f" (not applied: {variable['not_applied']})" if variable["not_applied"] else ""),
        "ImageNet weights in the Keras cache:",
    ]
    for name, weights in report["imagenet_weights"].items():
        state = "cached" if weights["cached"] else "missing (the first pretrained run downloads it)"
        lines.append(f"  {name:20} {state}: {weights['file']}")
    return "\n".join(lines)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _cached(path: Path) -> dict[str, Any]:
    return {"file": str(path), "cached": path.is_file()}


def _module_version(module: str) -> str | None:
    try:
        return importlib.import_module(module).__version__
    except ImportError:
        return None


def _jit(backend: str, accelerator: bool) -> dict[str, Any]:
    """What training's `--xla auto` resolves to here (training.precision.resolve_jit_compile)."""
    if resolve_jit_compile("auto") is False:
        return {"setting": "auto", "xla": False, "rule": "TensorFlow on CPUs: measured 2.7x slower with XLA"}
    if backend == "jax":
        return {"setting": "auto", "xla": True, "rule": "Keras's default: JAX always compiles with XLA"}
    if backend == "tensorflow":
        return {
            "setting": "auto",
            "xla": accelerator,
            "rule": "Keras's default on GPUs: on, except under tf.distribute",
        }
    return {"setting": "auto", "xla": False, "rule": "Keras's default: torch runs eagerly"}


def _cpu(cpuinfo: Path) -> dict[str, Any]:
    cpu = describe_cpu(cpuinfo)
    return {
        "model": cpu.model,
        "cores": cpu.cores,
        "flags": [flag for flag in CPU_FLAGS if flag in cpu.flags],
        "native_bf16": cpu.native_bf16,
    }
