"""Compare the Keras 3 backends (TensorFlow, PyTorch, JAX) on Skin Pamper's seed CNN, on the CPU.

The numbers are meant to choose Skin Pamper's default backend. For each backend it measures:

* training throughput: the seed CNN (`create_model("seed", image_size=28)`) trained for 2 epochs on
  4,096 random 28x28x3 images (float32 holding 0..255 integers) with random labels (7 classes),
  batch 64, Adam, sparse categorical cross-entropy; images/s of the *second* (last) epoch, so compiling and
  tracing (which happen in the first) are left out;
* inference throughput: `model.predict(x, batch_size=256)` on the same 4,096 images, after warm-up;
* single-image latency, median of N calls on one image, three ways: `model.predict`, a direct
  `model(x, training=False)` call and the backend's fast path (`tf.function`, `torch.no_grad()`,
  `jax.jit` of `stateless_call`); each call takes a NumPy array and returns a NumPy array;
* import time: wall time of `import keras` + `import <backend>` in a fresh interpreter (median of 3);
* install size: bytes on disk of the backend's distributions (from their RECORD files in
  site-packages), alone and together with the dependencies that they alone pull in (their
  dependency closure less that of keras and Skin Pamper's other requirements).

One backend, in this process:   python benchmarks/backends.py --backend torch
All, one interpreter each:      python benchmarks/backends.py --all \
                                    --python-for tensorflow=.venv/bin/python torch=/tmp/bk/torch/bin/python

`--all` runs every backend in a subprocess (a process can hold only one Keras backend) and prints one
Markdown table. Every process is limited to `--threads` CPUs (2 by default) by CPU affinity, which all
three runtimes size their thread pools from, plus each backend's own thread settings.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

BACKENDS = ("tensorflow", "torch", "jax")
# The distributions that make up each backend (those not installed are skipped).
BACKEND_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "torch": ("torch",),
    "jax": ("jax", "jaxlib"),
}
RESULT_PREFIX = "BACKEND_RESULT_JSON "
MIB = 1024 * 1024


@dataclass
class Settings:
    samples: int = 4096
    image_size: int = 28
    num_classes: int = 7
    batch_size: int = 64
    epochs: int = 2
    predict_batch_size: int = 256
    latency_calls: int = 50
    threads: int = 2


@dataclass
class Result:
    backend: str
    backend_version: str
    keras_version: str
    numpy_version: str
    python: str
    threads: int
    epoch_seconds: list[float]
    train_images_per_s: float
    final_loss: float
    predict_images_per_s: float
    latency_predict_ms: float
    latency_call_ms: float
    latency_fast_ms: float
    fast_path: str
    import_s: float
    install_mib: float
    install_with_deps_mib: float
    deps_counted: list[str]
    other_cpu_cores: float  # CPU time other processes used during the run / its wall time


# --------------------------------------------------------------------------------------------------
# Machine and process set-up
# --------------------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_summary() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"CPU: {cpu_model()}; {os.cpu_count()} logical cores ({usable} usable by this process); "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}"
    )


def machine_busy_seconds() -> float:
    """CPU seconds all processes have used since boot (user, nice, system, irq, softirq, steal)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children (the import-time subprocesses)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def other_cpu_cores(busy_start: float, own_start: float, wall_start: float) -> float:
    """Cores' worth of CPU that other processes used since the start values: they skew the figures."""
    others = (machine_busy_seconds() - busy_start) - (own_cpu_seconds() - own_start)
    return max(others, 0.0) / (time.perf_counter() - wall_start)


def wait_until_quiet(max_wait_s: float, window_s: float = 5.0, threshold_cores: float = 0.1) -> float:
    """Wait (at most `max_wait_s`) for a `window_s` window in which other processes use little CPU."""
    started = time.perf_counter()
    while True:
        before = machine_busy_seconds()
        time.sleep(window_s)
        busy = (machine_busy_seconds() - before) / window_s
        waited = time.perf_counter() - started
        if busy < threshold_cores or waited >= max_wait_s:
            return busy


def limit_threads_env(backend: str, threads: int) -> None:
    """Select the backend and cap threads; must run before keras (or the backend) is imported."""
    os.environ["KERAS_BACKEND"] = backend
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # hide TF's INFO lines, keep its warnings
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[:threads]
        os.sched_setaffinity(0, cpus)  # inherited by the import-time subprocesses, too


def limit_threads_runtime(backend: str, threads: int) -> None:
    """The backend's own thread settings, after it is imported and before it runs anything."""
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    elif backend == "torch":
        import torch

        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # refused once parallel work has started
            torch.set_num_interop_threads(1)
    # JAX/XLA has no runtime call; its CPU thread pool is sized from the CPU affinity set above.


# --------------------------------------------------------------------------------------------------
# Import time and install size (no keras needed)
# --------------------------------------------------------------------------------------------------


def import_seconds(backend: str, runs: int = 3) -> float:
    """Median wall time of `import keras; import <backend>` in a fresh interpreter."""
    code = f"import time; t = time.perf_counter(); import keras, {backend}; print(time.perf_counter() - t)"
    env = {**os.environ, "KERAS_BACKEND": backend}
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout
        times.append(float(out.strip().splitlines()[-1]))
    return statistics.median(times)


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def _installed(name: str) -> metadata.Distribution | None:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def dependency_closure(names: Iterable[str]) -> set[str]:
    """Canonical names of the installed distributions `names` need, themselves included (no extras)."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    stack = list(names)
    while stack:
        name = _canonical(stack.pop())
        dist = _installed(name)
        if name in seen or dist is None:
            continue
        seen.add(name)
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                stack.append(req.name)
    return seen


def distributions_bytes(names: Iterable[str]) -> int:
    """Bytes on disk of the files that the installed distributions' RECORDs list (each file once)."""
    files: set[Path] = set()
    for name in names:
        dist = _installed(name)
        for file in (dist.files or []) if dist else []:
            files.add(Path(str(file.locate())).resolve())
    return sum(path.stat().st_size for path in files if path.is_file())


def install_sizes(backend: str) -> tuple[float, float, list[str]]:
    """(backend MiB, backend + its own dependencies MiB, names of those dependencies)."""
    own = [n for n in BACKEND_DISTRIBUTIONS[backend] if _installed(n) is not None]
    all_backend_dists = {_canonical(n) for names in BACKEND_DISTRIBUTIONS.values() for n in names}
    # What the project needs whichever backend it runs on: keras and Skin Pamper's other requirements.
    base = ["keras"]
    project = _installed("skinpamper")
    if project is not None:
        from packaging.requirements import Requirement

        for spec in project.requires or []:
            req = Requirement(spec)
            if _canonical(req.name) in all_backend_dists:
                continue
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                base.append(req.name)
    # pip and setuptools come with every venv, so they cost nothing extra even where a backend requires them.
    extra = dependency_closure(own) - dependency_closure(base) - {"pip", "setuptools"}
    deps = sorted(extra - {_canonical(n) for n in own})
    return distributions_bytes(own) / MIB, distributions_bytes(extra) / MIB, deps


# --------------------------------------------------------------------------------------------------
# The measurement of one backend, in this process
# --------------------------------------------------------------------------------------------------


def median_ms(fn: Callable[[], object], calls: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def fast_path(backend: str, model: Any) -> tuple[str, Callable[[Any], Any]]:
    """The backend's quickest way to run the model on a NumPy batch, returning a NumPy array."""
    import keras
    import numpy as np

    if backend == "tensorflow":
        import tensorflow as tf

        spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
        compiled = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        return "tf.function", lambda x: compiled(x).numpy()
    if backend == "torch":
        import torch

        def run_no_grad(x: Any) -> Any:
            with torch.no_grad():
                return keras.ops.convert_to_numpy(model(x, training=False))

        return "torch.no_grad() eager", run_no_grad
    if backend == "jax":
        import jax

        # Own copies: Keras's JAX trainer donates (deletes) the variables' buffers when it runs.
        trainable = [jax.numpy.array(keras.ops.convert_to_numpy(v)) for v in model.trainable_variables]
        non_trainable = [
            jax.numpy.array(keras.ops.convert_to_numpy(v)) for v in model.non_trainable_variables
        ]

        @jax.jit
        def infer(trainable: Any, non_trainable: Any, x: Any) -> Any:
            return model.stateless_call(trainable, non_trainable, x, training=False)[0]

        return "jax.jit(stateless_call)", lambda x: np.asarray(infer(trainable, non_trainable, x))
    raise ValueError(backend)


def measure(backend: str, settings: Settings) -> Result:
    busy_at_start = machine_busy_seconds(), own_cpu_seconds(), time.perf_counter()
    limit_threads_env(backend, settings.threads)
    import keras
    import numpy as np

    limit_threads_runtime(backend, settings.threads)
    from skinpamper.models import create_model

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    shape = (settings.samples, settings.image_size, settings.image_size, 3)
    x = rng.integers(0, 256, shape).astype("float32")
    y = rng.integers(0, settings.num_classes, settings.samples).astype("int32")

    model = create_model("seed", image_size=settings.image_size, num_classes=settings.num_classes)
    model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy")

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self._start = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            # JAX dispatches asynchronously: reading a weight back waits for the last step to finish.
            keras.ops.convert_to_numpy(self.model.trainable_variables[-1].value)
            self.seconds.append(time.perf_counter() - self._start)

    timer = EpochTimer()
    history = model.fit(
        x, y, batch_size=settings.batch_size, epochs=settings.epochs, callbacks=[timer], verbose=0
    )

    # Inference throughput: one warm-up pass (traces/compiles), then the median of three.
    def predict_all() -> object:
        return model.predict(x, batch_size=settings.predict_batch_size, verbose=0)

    predict_s = median_ms(predict_all, calls=3, warmup=1) / 1000

    one = x[:1]
    fast_name, fast = fast_path(backend, model)
    latency_predict = median_ms(lambda: model.predict(one, verbose=0), settings.latency_calls)
    latency_call = median_ms(
        lambda: keras.ops.convert_to_numpy(model(one, training=False)), settings.latency_calls
    )
    latency_fast = median_ms(lambda: fast(one), settings.latency_calls)
    np.testing.assert_allclose(fast(one), model.predict(one, verbose=0), rtol=1e-3, atol=1e-5)

    backend_module = __import__(backend)
    install_mib, with_deps_mib, deps = install_sizes(backend)
    return Result(
        backend=backend,
        backend_version=backend_module.__version__,
        keras_version=keras.__version__,
        numpy_version=np.__version__,
        python=platform.python_version(),
        threads=settings.threads,
        epoch_seconds=timer.seconds,
        train_images_per_s=settings.samples / timer.seconds[-1],
        final_loss=float(history.history["loss"][-1]),
        predict_images_per_s=settings.samples / predict_s,
        latency_predict_ms=latency_predict,
        latency_call_ms=latency_call,
        latency_fast_ms=latency_fast,
        fast_path=fast_name,
        import_s=import_seconds(backend),
        install_mib=install_mib,
        install_with_deps_mib=with_deps_mib,
        deps_counted=deps,
        other_cpu_cores=other_cpu_cores(*busy_at_start),
    )


# --------------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------------

ROWS: list[tuple[str, Callable[[Result], str]]] = [
    ("versions", lambda r: f"{r.backend} {r.backend_version}, keras {r.keras_version}"),
    ("Python / NumPy", lambda r: f"{r.python} / {r.numpy_version}"),
    ("training, last epoch (images/s)", lambda r: f"{r.train_images_per_s:.0f}"),
    ("epoch wall times, 1st incl. tracing (s)", lambda r: ", ".join(f"{t:.1f}" for t in r.epoch_seconds)),
    ("loss after training", lambda r: f"{r.final_loss:.3f}"),
    ("inference, predict batch 256 (images/s)", lambda r: f"{r.predict_images_per_s:.0f}"),
    ("1 image, model.predict (ms, median)", lambda r: f"{r.latency_predict_ms:.1f}"),
    ("1 image, model(x, training=False) (ms, median)", lambda r: f"{r.latency_call_ms:.1f}"),
    ("1 image, fast path (ms, median)", lambda r: f"{r.latency_fast_ms:.2f}"),
    ("fast path used", lambda r: r.fast_path),
    ("import keras + backend (s, median of 3)", lambda r: f"{r.import_s:.2f}"),
    ("install size, backend (MiB)", lambda r: f"{r.install_mib:.0f}"),
    ("install size, backend + own deps (MiB)", lambda r: f"{r.install_with_deps_mib:.0f}"),
    ("own deps counted", lambda r: ", ".join(r.deps_counted) or "none"),
    ("CPU used by other processes meanwhile (cores)", lambda r: f"{r.other_cpu_cores:.2f}"),
]


def markdown_table(results: dict[str, Result | str]) -> str:
    names = list(results)
    lines = ["| metric | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for label, cell in ROWS:
        cells = [cell(r) if isinstance(r, Result) else r for r in results.values()]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def settings_summary(settings: Settings) -> str:
    return (
        f"Seed CNN, {settings.samples} random {settings.image_size}x{settings.image_size}x3 images, "
        f"{settings.num_classes} classes, batch {settings.batch_size}, {settings.epochs} epochs, Adam; "
        f"{settings.threads} threads; latency = median of {settings.latency_calls} calls on one image."
    )


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def run_all(
    settings: Settings, pythons: dict[str, str], backends: list[str], wait_quiet_s: float
) -> dict[str, Result | str]:
    results: dict[str, Result | str] = {}
    for backend in backends:
        python = pythons.get(backend, sys.executable)
        if wait_quiet_s > 0:
            busy = wait_until_quiet(wait_quiet_s)
            print(f"other processes use {busy:.2f} cores", file=sys.stderr, flush=True)
        print(f"running {backend} with {python} ...", file=sys.stderr, flush=True)
        cmd = [python, str(Path(__file__).resolve()), "--backend", backend, "--json"]
        cmd += [f"--{k.replace('_', '-')}={v}" for k, v in asdict(settings).items()]
        started = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)  # stderr passes through
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
        if proc.returncode != 0 or not lines:
            results[backend] = f"failed (exit {proc.returncode})"
        else:
            results[backend] = Result(**json.loads(lines[-1][len(RESULT_PREFIX) :]))
        print(f"  {backend} done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return results


def parse_python_for(items: list[str]) -> dict[str, str]:
    pythons = {}
    for item in items:
        backend, sep, path = item.partition("=")
        if not sep or backend not in BACKENDS:
            raise SystemExit(f"--python-for expects BACKEND=PATH with BACKEND in {BACKENDS}, got {item!r}")
        pythons[backend] = path
    return pythons


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--backend", choices=BACKENDS, help="measure one backend in this process")
    mode.add_argument("--all", action="store_true", help="measure each backend in its own subprocess")
    parser.add_argument(
        "--python-for",
        nargs="+",
        default=[],
        metavar="BACKEND=PATH",
        help="interpreter for a backend in --all mode (default: this one)",
    )
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS), help="for --all")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="in --all mode, wait up to this long before each backend for the CPUs to be idle",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line (--backend)")
    defaults = Settings()
    for key, value in asdict(defaults).items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, default=value, help=f"default {value}")
    args = parser.parse_args(argv)
    settings = Settings(**{key: getattr(args, key) for key in asdict(defaults)})

    if args.backend:
        result = measure(args.backend, settings)
        if args.json:
            print(RESULT_PREFIX + json.dumps(asdict(result)), flush=True)
        else:
            print(machine_summary())
            print(settings_summary(settings))
            print()
            print(markdown_table({args.backend: result}))
        return 0

    results = run_all(settings, parse_python_for(args.python_for), args.backends, args.wait_quiet)
    print(machine_summary())
    print(settings_summary(settings))
    print()
    print(markdown_table(results))
    return 0 if all(isinstance(r, Result) for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
