"""Shared helpers for the API tests: an engine served on a private socket."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

from devster_tui.api.client import Address, AsyncClient
from devster_tui.api.host import serve_engine
from devster_tui.api.paths import EngineLock, acquire
from devster_tui.api.server import ApiServer
from devster_tui.config.loader import load_project
from devster_tui.engine.supervisor import Engine
from tests.helpers import run as run_with_deadline
from tests.helpers import wait_state as wait_state

PY = sys.executable
DEADLINE = 15.0


@contextlib.contextmanager
def runtime_env() -> Iterator[Path]:
    """A short private XDG_RUNTIME_DIR for this test (socket paths must stay short)."""
    old = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(tempfile.mkdtemp(prefix="dvt"))
    os.environ["XDG_RUNTIME_DIR"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("XDG_RUNTIME_DIR", None)
        else:
            os.environ["XDG_RUNTIME_DIR"] = old


def write_project(tmp_path: Path, yaml: str) -> Path:
    """Write ``devster.yaml`` (``PY`` replaced by this interpreter) and return its path."""
    file = tmp_path / "devster.yaml"
    file.write_text(textwrap.dedent(yaml).replace("PY", PY))
    return file


@contextlib.asynccontextmanager
async def served(
    tmp_path: Path,
    yaml: str,
    *,
    tcp: bool = False,
    token: str | None = None,
    start: bool = True,
    server_hook: Callable[[ApiServer], None] | None = None,
) -> AsyncIterator[tuple[Engine, ApiServer, EngineLock]]:
    """An engine over ``yaml`` with its API served; shut down and unlocked afterwards."""
    file = write_project(tmp_path, yaml)
    lock = acquire(file)
    engine = Engine(load_project(file))
    try:
        async with serve_engine(engine, lock, tcp_port=0 if tcp else None, token=token) as server:
            if server_hook is not None:
                server_hook(server)
            if start:
                await engine.start()
            try:
                yield engine, server, lock
            finally:
                await engine.shutdown()
    finally:
        await engine.close()
        lock.release()


def run(coro: Coroutine[Any, Any, None], limit: float = 60.0) -> None:
    """Run one async test body with an overall deadline."""
    run_with_deadline(coro, limit)


def unix_client(lock: EngineLock) -> AsyncClient:
    """An async client on the lock's socket."""
    return AsyncClient(Address(socket=str(lock.socket)))
