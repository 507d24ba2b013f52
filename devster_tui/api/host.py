"""Runs the API server (and the event bus) beside an engine for the lifetime of ``devster up``."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from devster_tui.api.paths import INFO_NAME, EngineLock
from devster_tui.api.server import ApiServer

if TYPE_CHECKING:
    from devster_tui.engine.supervisor import Engine


def _write_info(path: Path, info: dict[str, object]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(info, handle)
    os.replace(tmp, path)


@contextlib.asynccontextmanager
async def serve_engine(
    engine: Engine,
    lock: EngineLock,
    *,
    tcp_host: str | None = None,
    tcp_port: int | None = None,
    token: str | None = None,
) -> AsyncIterator[ApiServer]:
    """Serve ``engine`` on the lock's socket (and TCP if ``tcp_port`` is set) while inside.

    Also starts the NATS event bus when the project sets ``bus:``.

    Args:
        engine: The engine (not yet started: clients see it from its first event).
        lock: The held single-instance lock (its directory holds the socket).
        tcp_host: TCP listener address (default 127.0.0.1).
        tcp_port: TCP port (0: any free one); None: no TCP listener.
        token: TCP bearer token (default: ``$DEVSTER_TOKEN``, else a random one).

    Yields:
        The running server.
    """
    if tcp_port is not None and not token:
        token = os.environ.get("DEVSTER_TOKEN") or secrets.token_urlsafe(32)
    server = ApiServer(engine, token=token, monotonic=engine.clock.monotonic)
    bus = None
    try:
        await server.listen_unix(lock.socket)
        info: dict[str, object] = {
            "pid": os.getpid(),
            "socket": str(lock.socket),
            "config_file": str(engine.loaded.file),
        }
        if tcp_port is not None:
            host = tcp_host or "127.0.0.1"
            port = await server.listen_tcp(host, tcp_port)
            shown = f"[{host}]" if ":" in host else host
            info["url"] = f"http://{shown}:{port}"
            info["token"] = token
        _write_info(lock.directory / INFO_NAME, info)
        url = engine.loaded.project.bus
        if url:
            from devster_tui.clients.bus import EventBus

            name = engine.loaded.project.name or engine.loaded.root.name
            bus = EventBus(url, name, engine.store)
            bus.start()
        yield server
    finally:
        if bus is not None:
            await bus.aclose()
        await server.close()
