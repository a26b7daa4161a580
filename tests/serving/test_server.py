"""`skinpamper serve` binds its port before it says where it serves, and a port it cannot have is one line."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service_helpers import assert_probes_answered_fast
from skinpamper.errors import ConfigError
from skinpamper.serving.service.server import listen


def test_a_port_in_use_is_one_line_and_nothing_claims_to_serve(onnx_model: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "skinpamper", "serve", str(onnx_model), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1 and "serving" not in done.stderr
    assert done.stderr == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_listen_takes_a_free_port_and_refuses_an_address_not_here() -> None:
    with listen("127.0.0.1", 0) as sock:
        host, port = sock.getsockname()
        assert host == "127.0.0.1" and port > 0
        with socket.create_connection((host, port), timeout=5):  # listening already: the connection waits
            pass
    with pytest.raises(ConfigError, match=r"^cannot listen on 192\.0\.2\.1:8000: "):
        listen("192.0.2.1", 8000)  # TEST-NET-1: an address no machine here has


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def _healthz_ms(port: int) -> float:
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 200"), reply
    return (time.perf_counter() - start) * 1e3


def _answer(sock: socket.socket) -> bytes:
    """What the server sent before closing (b"" for a close without a word, or a reset)."""
    try:
        return sock.recv(4096)
    except ConnectionResetError:
        return b""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="reads the server's memory from /proc")
def test_slow_clients_hold_nothing_for_long(onnx_model: Path) -> None:
    """200 idle sockets, 20 stalled uploads and a 1 MiB header: /healthz stays fast, memory flat, the
    stalled clients are cut off at their timeouts, and SIGTERM ends the server promptly."""
    timeout = 4  # header and body timeouts, short so that the test sees them expire
    env = {**os.environ, "SKINPAMPER_SERVE_HEADER_TIMEOUT": str(timeout)}
    env["SKINPAMPER_SERVE_BODY_TIMEOUT"] = str(timeout)
    command = [sys.executable, "-m", "skinpamper", "serve", str(onnx_model), "--port", "0"]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    clients: list[socket.socket] = []
    try:
        port = int(re.search(r":(\d+)/$", server.stderr.readline().strip()).group(1))
        probes = [_healthz_ms(port)]  # the first answer comes once the warm-up is done
        rss = _rss_mib(server.pid)
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(200)]
        head = (
            b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
            b"boundary=b\r\nContent-Length: 1000000\r\n\r\n--b\r\n"
            b'Content-Disposition: form-data; name="files"; filename="a.jpg"\r\n\r\n\xff\xd8\xff'
        )
        stalled = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(20)]
        clients += idle + stalled
        for sock in stalled:
            sock.sendall(head + b"x" * 5000)
        probes += [_healthz_ms(port) for _ in range(3)]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as big:
            # The server may stop reading at its header limit and close before all of it is sent.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                big.sendall(
                    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
                )
            big_answer = _answer(big)
        started = time.perf_counter()
        probes += [_healthz_ms(port) for _ in range(3)]
        grown = _rss_mib(server.pid) - rss
        time.sleep(max(0.0, timeout + 1 - (time.perf_counter() - started)))
        probes.append(_healthz_ms(port))
        stalled_answers = {_answer(sock).split(b"\r\n")[0] for sock in stalled}
        idle_answers = {_answer(sock) for sock in idle}
        server.send_signal(signal.SIGTERM)
        start = time.perf_counter()
        code = server.wait(timeout=10)
        stopped = time.perf_counter() - start
    finally:
        for sock in clients:
            sock.close()
        if server.poll() is None:
            server.kill()
            server.wait()
    print(
        f"healthz ms {[round(p, 1) for p in probes]}; RSS +{grown:.1f} MiB; SIGTERM to exit {stopped:.2f} s"
    )
    assert_probes_answered_fast(probes[1:])
    assert grown < 100
    assert big_answer.startswith(b"HTTP/1.1 400") or big_answer == b"", big_answer
    assert stalled_answers == {b"HTTP/1.1 408 Request Timeout"} and idle_answers == {b""}
    assert code in (0, -signal.SIGTERM) and stopped < 10  # uvicorn re-raises the signal it handled
