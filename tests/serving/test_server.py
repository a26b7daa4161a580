"""`skinpamper serve` binds its port before it says where it serves, and a port it cannot have is one line."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from skinpamper.errors import ConfigError
from skinpamper.serving.service.server import listen

pytest_plugins = ["service_fixtures"]


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
