"""Whether batching concurrent requests would pay: ONNX inference time per image by batch size.

The service runs each request's images as one batch on one onnxruntime thread per inference (two
inferences at once on 2 cores). Micro-batching (waiting a few ms to join concurrent requests into one
batch) only pays if a batch of B images costs clearly less than B batches of one. This prints the time
per image for B = 1..32 on one thread, on random images at the model's own size, and the share of the
2-core float32 ceiling that is.

    python benchmarks/onnx_batch.py RUN/model.onnx [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

BATCHES = (1, 2, 4, 8, 16, 32)


def per_image_ms(session: ort.InferenceSession, images: np.ndarray, seconds: float) -> float:
    """Median over 5 rounds of the time per image, each round at least seconds/5 long."""
    name = session.get_inputs()[0].name
    session.run(None, {name: images})  # the first run allocates
    rounds = []
    for _ in range(5):
        start, done = time.perf_counter(), 0
        while time.perf_counter() - start < seconds / 5:
            session.run(None, {name: images})
            done += len(images)
        rounds.append((time.perf_counter() - start) / done)
    return float(np.median(rounds)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("model", type=Path, help="an .onnx export (skinpamper export RUN)")
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per batch size [3]")
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # as the service runs it (SKINPAMPER_SERVE_ONNX_THREADS)
    session = ort.InferenceSession(str(args.model), options, providers=["CPUExecutionProvider"])
    card = json.loads(session.get_modelmeta().custom_metadata_map["skinpamper"])
    size = card["image_size"]
    rng = np.random.default_rng(0)
    print(f"{card['architecture']} at {size} px, one onnxruntime thread")
    print("| batch | ms per image | vs batch 1 |")
    print("|---:|---:|---:|")
    first = None
    for batch in BATCHES:
        images = rng.integers(0, 256, (batch, size, size, 3)).astype(np.float32)
        ms = per_image_ms(session, images, args.seconds)
        first = first or ms
        print(f"| {batch} | {ms:.2f} | {first / ms:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
