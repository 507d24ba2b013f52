"""Event bus retries against a real ``nats-server`` without JetStream: no connection leaks."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from devster_tui.clients import bus as bus_module
from devster_tui.state.store import Store
from tests.helpers.components import require_binary

NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"


@pytest.fixture(autouse=True)
def _nats_server_installed() -> None:
    """nats-server is a real component: skip without it, fail under CI=true."""
    require_binary("nats-server", NATS)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_bus_retrying_a_server_without_jetstream_leaves_no_connection_open_per_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bus_module, "RETRY", 0.05)
    port, monitor = _free_port(), _free_port()
    proc = subprocess.Popen(
        [NATS, "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def varz() -> tuple[int, int]:
        url = f"http://127.0.0.1:{monitor}/varz"
        with urllib.request.urlopen(url, timeout=2) as reply:
            data = json.loads(reply.read())
        return int(data["connections"]), int(data["total_connections"])

    def attempts_reach(count: int) -> None:
        deadline = time.monotonic() + 15
        while varz()[1] < count:
            assert time.monotonic() < deadline, f"fewer than {count} connection attempts"
            time.sleep(0.05)

    async def body() -> None:
        bus = bus_module.EventBus(f"nats://127.0.0.1:{port}", "leak", Store())
        bus.start()
        try:
            await asyncio.to_thread(attempts_reach, 4)
            # The attempt under way may be connected; every earlier one must be closed.
            assert (await asyncio.to_thread(varz))[0] <= 1
        finally:
            await bus.aclose(grace=0.5)

    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", monitor), 0.1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("nats-server did not start")
                time.sleep(0.02)
        asyncio.run(asyncio.wait_for(body(), 30))
    finally:
        proc.terminate()
        proc.wait(10)
