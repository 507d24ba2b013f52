"""Client commands pointed at something that is not a devster engine: a message, not a traceback.

Regression: ``devster ps --url`` against a listener that answers with something other than
HTTP (an sshd, a stray server on the port) ended in a ``WireError`` traceback.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from devster_tui.errors import ExitCode
from tests.helpers import devster_cli as devster


@pytest.fixture
def not_an_engine() -> Iterator[int]:
    """A TCP port whose listener answers every connection with an ssh banner."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)  # so the thread sees ``stop`` soon after the test
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        server.close()
        thread.join(timeout=10)


@pytest.mark.parametrize("command", [("ps",), ("logs", "web"), ("restart", "web")])
def test_a_non_http_answer_is_reported_in_one_line(
    not_an_engine: int, tmp_path: Path, command: tuple[str, ...]
) -> None:
    env = {**os.environ, "DEVSTER_TOKEN": "t"}
    result = devster(
        *command, "--url", f"http://127.0.0.1:{not_an_engine}", cwd=tmp_path, env=env, timeout=30
    )
    assert "Traceback" not in result.stderr
    assert result.stderr == "devster: malformed answer from the engine: malformed response\n"
    assert result.returncode == ExitCode.NO_ENGINE
