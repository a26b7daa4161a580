"""Cached load vs parsing the hmnist CSV with pandas (target: cached load at least 20x faster).

Usage: python benchmarks/load.py [PATH_TO_HAM10000_FOLDER] [--repeats 5]
Caches go to a fresh temporary $SKINPAMPER_HOME so the first load really parses.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ham10000"


def timed(fn, repeats: int) -> float:
    """Median wall time of `fn` over `repeats` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ["SKINPAMPER_HOME"] = tempfile.mkdtemp(prefix="skinpamper-bench-")
    from skinpamper.data.load import load_dataset

    csv = args.path / "hmnist_28_28_RGB.csv"
    pandas_s = timed(lambda: pd.read_csv(csv), args.repeats)
    start = time.perf_counter()
    load_dataset(args.path, size=28)
    first_s = time.perf_counter() - start
    cached_s = timed(lambda: load_dataset(args.path, size=28), args.repeats)
    print(f"pandas.read_csv(hmnist_28_28_RGB.csv)   {pandas_s * 1000:8.0f} ms")
    print(f"load_dataset, first load (parse+check) {first_s * 1000:8.0f} ms")
    speedup = pandas_s / cached_s
    print(f"load_dataset, cached                   {cached_s * 1000:8.0f} ms  ({speedup:.0f}x faster)")
    jpeg_first = time.perf_counter()
    load_dataset(args.path, size=64, fmt="jpeg")
    jpeg_first = time.perf_counter() - jpeg_first
    jpeg_cached = timed(lambda: load_dataset(args.path, size=64, fmt="jpeg"), args.repeats)
    print(f"load_dataset JPEGs at 64 px, first     {jpeg_first * 1000:8.0f} ms")
    print(f"load_dataset JPEGs at 64 px, cached    {jpeg_cached * 1000:8.0f} ms")


if __name__ == "__main__":
    main()
