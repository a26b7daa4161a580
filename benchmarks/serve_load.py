"""Load test of `skinpamper serve` with an ONNX model: throughput, latency, errors and server memory.

Starts the service on 127.0.0.1 in its own process exactly as a user would (`python -m skinpamper serve
MODEL`), waits for /readyz, sends a warm-up, then drives POST /v1/predict from `--concurrency`
keep-alive connections until `--requests` have been answered. The client is raw asyncio sockets with a
request prepared once, so it costs the shared CPU as little as possible.

Two ways to drive it:
  closed loop (default): each connection sends its next request as soon as the last is answered, which
      measures the most the server can do; by Little's law latency is then concurrency / throughput.
  --rate R: requests start at R per second in total whatever the answers, as independent users do;
      this measures latency at a given load (e.g. --rate 300 for the 300 req/s target).

Prints requests/s, p50/p99/max latency, errors, the in-service decode, queue and inference times and
the mean batch (from the Server-Timing header) and the server's resident memory before and after the
measured requests. `--max-batch 1` turns the service's micro-batching off, to compare.

    python benchmarks/serve_load.py runs/seed/model.onnx --requests 10000 --concurrency 50
    python benchmarks/serve_load.py runs/seed/model.onnx --requests 10000 --concurrency 50 --rate 300
    python benchmarks/serve_load.py RUN/model.onnx --rate 150 --max-batch 1  # one image per inference
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

BOUNDARY = "skinpamperbenchmark"
TIMING = re.compile(rb"(decode|queue|predict);dur=([0-9.]+)")
BATCH = re.compile(rb'batch of ([0-9]+)"')


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    decode_ms: list[float] = field(default_factory=list)
    predict_ms: list[float] = field(default_factory=list)
    queue_ms: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def default_image() -> bytes:
    """A 600x450 JPEG (the size of HAM10000's photos) with smooth structure, about 30 KB."""
    rng = np.random.default_rng(0)
    small = rng.integers(60, 200, (9, 12, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((600, 450), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def build_request(port: int, image: bytes, name: str) -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = head + image + f"\r\n--{BOUNDARY}--\r\n".encode()
    headers = (
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    return headers + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    return status, head, await reader.readexactly(length)


async def drive(
    port: int, request: bytes, total: int, concurrency: int, rate: float | None
) -> tuple[Tally, float]:
    """Send `total` requests over `concurrency` connections; returns the tally and the wall time."""
    tally, started = Tally(), time.perf_counter()
    tickets = iter(range(total))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for ticket in tickets:
                if rate:  # open loop: request `ticket` is due at ticket / rate seconds
                    await asyncio.sleep(max(0.0, started + ticket / rate - time.perf_counter()))
                sent = time.perf_counter()
                writer.write(request)
                try:
                    status, head, _ = await read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError) as exc:
                    tally.error(type(exc).__name__)
                    return
                done = time.perf_counter()
                # Open loop: latency counts from when the request was due, so queueing in the client counts.
                tally.latencies.append(done - (started + ticket / rate if rate else sent))
                if status != 200:
                    tally.error(f"HTTP {status}")
                for what, value in TIMING.findall(head):
                    getattr(tally, f"{what.decode()}_ms").append(float(value))
                tally.batch_sizes += [int(size) for size in BATCH.findall(head)]
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return tally, time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the server has used so far: per request, this holds on a busy machine too."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident memory of the server process (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(port: int, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server exited with status {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(
                    f"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
                )
                if conn.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"the server was not ready after {timeout:.0f} s")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def report(
    args: argparse.Namespace,
    tally: Tally,
    seconds: float,
    memory: tuple[float, float],
    cpu: float,
    image: int,
) -> None:
    ms = [1e3 * v for v in tally.latencies]
    mode = f"open loop at {args.rate:g} req/s" if args.rate else "closed loop"
    rows = [
        (
            "machine",
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        ),
        (
            "load",
            f"{args.requests:,} requests, {args.concurrency} connections, {mode}, {image / 1024:.0f} KB",
        ),
        ("throughput", f"{len(ms) / seconds:.1f} req/s"),
        (
            "latency p50 / p99 / max",
            f"{percentile(ms, 50):.1f} / {percentile(ms, 99):.1f} / {max(ms, default=0):.1f} ms",
        ),
        ("errors", f"{sum(tally.errors.values())} {tally.errors or ''}".strip()),
        ("in service: decode p50", f"{percentile(tally.decode_ms, 50):.2f} ms"),
        (
            "in service: predict p50 / p99",
            f"{percentile(tally.predict_ms, 50):.2f} / {percentile(tally.predict_ms, 99):.2f} ms",
        ),
        (
            "in service: queue p50 / p99",
            f"{percentile(tally.queue_ms, 50):.2f} / {percentile(tally.queue_ms, 99):.2f} ms",
        ),
        ("images per inference (mean)", f"{np.mean(tally.batch_sizes or [np.nan]):.2f}"),
        ("server CPU per request", f"{1e3 * cpu / max(len(ms), 1):.2f} ms (user + system)"),
        (
            "server RSS before / after",
            f"{memory[0]:.1f} / {memory[1]:.1f} MiB ({memory[1] - memory[0]:+.1f})",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="an .onnx export (skinpamper export RUN --format onnx)")
    parser.add_argument("--requests", type=int, default=10_000, help="measured requests [10000]")
    parser.add_argument("--concurrency", type=int, default=50, help="keep-alive connections [50]")
    parser.add_argument("--warmup", type=int, default=500, help="requests before measuring [500]")
    parser.add_argument("--rate", type=float, help="open loop: total requests per second")
    parser.add_argument("--max-batch", type=int, help="SKINPAMPER_SERVE_MAX_BATCH [the service's: 8]")
    parser.add_argument("--image", type=Path, help="JPEG/PNG to send [a 600x450 JPEG made here]")
    args = parser.parse_args()
    if args.model.suffix != ".onnx":
        sys.exit(f"{args.model}: give the .onnx export; make it with: skinpamper export RUN --format onnx")
    image = args.image.read_bytes() if args.image else default_image()
    port = free_port()
    env = dict(os.environ)
    if args.max_batch is not None:
        env["SKINPAMPER_SERVE_MAX_BATCH"] = str(args.max_batch)
    server = subprocess.Popen(
        [sys.executable, "-m", "skinpamper", "serve", str(args.model), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_ready(port, server)
        request = build_request(port, image, args.image.name if args.image else "lesion.jpg")
        asyncio.run(drive(port, request, args.warmup, args.concurrency, None))
        before, cpu = rss_mib(server.pid), cpu_seconds(server.pid)
        tally, seconds = asyncio.run(drive(port, request, args.requests, args.concurrency, args.rate))
        after, cpu = rss_mib(server.pid), cpu_seconds(server.pid) - cpu
    finally:
        server.terminate()
        server.wait(timeout=30)
    report(args, tally, seconds, (before, after), cpu, len(image))


if __name__ == "__main__":
    main()
