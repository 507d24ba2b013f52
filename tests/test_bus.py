"""Event bus tests with a real ``nats-server -js`` on loopback: publish, purge, mirror."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devster_tui.api.remote import BusMirror
from devster_tui.state.commands import Command
from devster_tui.state.model import Status
from tests.helpers.components import require_binary
from tests.test_api_support import run, runtime_env, served, wait_state

NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"


@pytest.fixture(autouse=True)
def _nats_server_installed() -> None:
    """nats-server is a real component: skip without it, fail under CI=true."""
    require_binary("nats-server", NATS)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    """A JetStream server on a free loopback port, stopped afterwards."""
    port = _free_port()
    proc = subprocess.Popen(
        [NATS, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(tmp_path / "js")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("nats-server did not start")
                time.sleep(0.02)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


PROJECT = """
project: shop bus
bus: {url}
tasks:
  web: {{cmd: [PY, -c, "import time\\nwhile True: time.sleep(0.2)"]}}
  build: {{cmd: [PY, -c, "print('ok')"], kind: job}}
"""


def test_bus_mirror_rebuilds_the_same_state_read_only(tmp_path: Path, nats_url: str) -> None:
    async def body() -> None:
        with runtime_env():
            async with served(tmp_path, PROJECT.format(url=nats_url)) as (engine, _s, _l):
                await wait_state(
                    engine,
                    lambda s: (
                        s.tasks["web"].status is Status.RUNNING
                        and s.tasks["build"].status is Status.SUCCEEDED
                    ),
                )
                mirror = BusMirror(nats_url, "shop bus")
                arrived = asyncio.Event()
                follower = asyncio.create_task(mirror.run(lambda _e: arrived.set()))
                try:
                    async with asyncio.timeout(15):
                        while mirror.store.seq < engine.store.seq:
                            arrived.clear()
                            await arrived.wait()
                    assert mirror.store.state.tasks == engine.store.state.tasks
                    assert mirror.store.state.project == "shop bus"
                    refused = await mirror.controller.execute(Command("stop", ("web",)))
                    assert not refused.ok and "read-only" in refused.message
                finally:
                    follower.cancel()
                    await asyncio.gather(follower, return_exceptions=True)

    run(body())
