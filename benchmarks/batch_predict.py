"""Scoring an archive: a naive loop, today's in-memory predict, streaming predict and Ray Data, locally.

Usage: python benchmarks/batch_predict.py MODEL.onnx [--n 20000] [--small 2000] [--data HAM10000_FOLDER]

Makes N realistic files (600x450 JPEGs, quality 90, upscaled from the shared HAM10000 JPEGs, flipped on
every other pass so no two files are the same) in a temporary folder, then runs each method in its own
process and prints images/s and that process's peak RSS:
  naive       Pillow open -> resize -> onnxruntime, one image at a time
  in-memory   Predictor.predict_files collecting every Prediction (the CLI before streaming)
  streaming   skinpamper.serving.batch.score_files to a parquet file (the default `predict --out`)
  ray         score_with_ray in a local Ray (all cores, no dashboard; RSS is the driver's), starting
              Ray included
  ray-started the same job timed once Ray is up, as on a running cluster (its actors still start)
Streaming also runs on the first --small files, to show whether its peak RSS grows with N. Then it
profiles what limits streaming by measurement: decoding alone (1 thread, and the pool of all cores) and
inference alone (pre-decoded batches of 256). Targets (issue 13, 2 cores, 28 px model, no TTA):
streaming >= 2,000 images/s or >= 90% of the naive decode-only rate x cores; flat peak RSS; Ray >= 70%
of streaming.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ham10000"
SIDE = (600, 450)
METHODS = (
    "naive",
    "naive-decode",
    "in-memory",
    "streaming",
    "ray",
    "ray-started",
    "decode-1",
    "decode-pool",
    "inference",
)


def make_archive(data: Path, folder: Path, n: int) -> list[Path]:
    """N distinct 600x450 JPEGs made from the HAM10000 photos (200x150), in 100-file sub-folders."""
    sources = sorted(data.rglob("ISIC_*.jpg"))
    if not sources:
        sys.exit(f"{data}: no HAM10000 JPEGs found; pass --data")

    def make(i: int) -> Path:
        image = Image.open(sources[i % len(sources)]).convert("RGB").resize(SIDE, Image.Resampling.BICUBIC)
        if (i // len(sources)) % 2:
            image = ImageOps.mirror(image)
        path = folder / f"{i // 100:04d}" / f"img{i:06d}.jpg"
        path.parent.mkdir(exist_ok=True)
        image.save(path, quality=90)
        return path

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        return list(pool.map(make, range(n)))


def run_method(method: str, model: Path, paths: list[Path], work: Path) -> tuple[int, float]:
    """Run one method in this process: (images handled, seconds), loading the model not counted."""
    from skinpamper.serving.batch import decode_batch, score_files, stream_predictions
    from skinpamper.serving.predict import Predictor

    predictor = Predictor.load(model)
    size, fit = predictor.card.image_size, predictor.card.fit
    predictor.probabilities(np.zeros((8, size, size, 3), np.uint8))  # onnxruntime's first call is slow
    start = time.perf_counter()
    if method in ("naive", "naive-decode"):
        import onnxruntime as ort

        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        for path in paths:
            pixels = np.asarray(Image.open(path).convert("RGB").resize((size, size)), np.float32)
            if method == "naive":
                session.run(None, {name: pixels[None]})
    elif method == "in-memory":
        kept = list(predictor.predict_files(paths))
        assert len(kept) == len(paths)
    elif method == "streaming":
        score_files(predictor, paths, work / "scores.parquet")
    elif method == "ray":
        from skinpamper.serving.ray_batch import ray_session, score_with_ray

        with ray_session():  # starting Ray counts: a user waits for it too
            score_with_ray(model, paths, work / "ray.parquet")
    elif method == "ray-started":  # Ray already up, as on a cluster: the job's own time, actors included
        from skinpamper.serving.ray_batch import ray_session, score_with_ray

        with ray_session():
            start = time.perf_counter()
            score_with_ray(model, paths, work / "ray.parquet")
            return len(paths), time.perf_counter() - start
    elif method == "decode-1":
        for first in range(0, len(paths), 256):
            chunk = paths[first : first + 256]
            decode_batch(chunk, [str(p) for p in chunk], size, fit)
    elif method == "decode-pool":  # the streaming engine's pool, with a model call that costs nothing
        predictor.engine = lambda images: (np.full((len(images), 7), 1 / 7), np.zeros(len(images)))
        for _ in stream_predictions(predictor, paths):
            pass
    elif method == "inference":
        images = decode_batch(paths[:256], [str(p) for p in paths[:256]], size, fit).images
        start = time.perf_counter()
        for _ in range(max(1, len(paths) // 256)):
            predictor.probabilities(images)
        return max(1, len(paths) // 256) * 256, time.perf_counter() - start
    return len(paths), time.perf_counter() - start


def measure(method: str, model: Path, folder: Path, n: int) -> dict:
    """Run `method` on the first n files in a fresh process: images/s and peak RSS (MB)."""
    command = [sys.executable, __file__, str(model), "--run", method, "--folder", str(folder), "--n", str(n)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"method": method, "n": n, "error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(args: argparse.Namespace) -> None:
    paths = sorted(args.folder.rglob("*.jpg"))[: args.n]
    with tempfile.TemporaryDirectory() as work:
        images, seconds = run_method(args.run, args.model, paths, Path(work))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"method": args.run, "n": images, "images_s": images / seconds, "peak_rss_mb": peak}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path, help="an ONNX export (a 28 px model for the issue's targets)")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--small", type=int, default=2_000, help="streaming also runs on this many")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS, help="a subset to run")
    parser.add_argument("--run", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="skinpamper-archive-") as folder:
        start = time.perf_counter()
        make_archive(args.data, Path(folder), args.n)
        print(f"made {args.n:,} 600x450 JPEGs in {time.perf_counter() - start:.0f} s; {os.cpu_count()} cores")
        runs = [("streaming", min(args.small, args.n))]
        runs += [(method, args.n) for method in args.methods]
        results = [measure(method, args.model, Path(folder), n) for method, n in runs]
    print(f"{'method':<14}{'images':>9}{'images/s':>11}{'peak RSS MB':>13}")
    for r in results:
        if "error" in r:
            print(f"{r['method']:<14}{r['n']:>9}  failed: {r['error']}")
        else:
            print(f"{r['method']:<14}{r['n']:>9,}{r['images_s']:>11,.0f}{r['peak_rss_mb']:>13,.0f}")
    rate = {r["method"]: r.get("images_s", float("nan")) for r in results[1:]}  # the runs on all N
    if set(rate) != set(METHODS):
        return
    cores = os.cpu_count() or 1
    share = rate["streaming"] / (rate["naive-decode"] * cores)
    print(
        f"streaming / (naive decode-only x {cores} cores) = {share:.0%} (target >= 90%, or >= 2,000 "
        f"images/s); ray / streaming = {rate['ray'] / rate['streaming']:.0%} (target >= 70%), "
        f"{rate['ray-started'] / rate['streaming']:.0%} once Ray is up"
    )
    limit = "decoding" if rate["decode-pool"] < rate["inference"] else "inference"
    print(
        f"what limits streaming: decoding alone {rate['decode-pool']:,.0f} images/s on the pool "
        f"({rate['decode-1']:,.0f} on 1 thread), inference alone {rate['inference']:,.0f} images/s -> {limit}"
    )


if __name__ == "__main__":
    main()
