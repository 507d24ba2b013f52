"""What every ``devster up`` holds while it runs: the single-instance lock and the API it serves.

Why apart from ``up`` and from ``up -d``: the TUI run, the headless run and the background
engine that ``up -d`` starts all take the same lock and serve the same socket (plus the TCP
listener and the event bus when asked), so the rules live once here.  Import-light: only
the standard library at import time, because ``up``'s argument parser imports this module.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devster_tui.api.paths import EngineLock
    from devster_tui.config.loader import LoadedProject
    from devster_tui.engine.supervisor import Engine
    from devster_tui.state.events import Event


def add_api_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--api-port`` and ``--api-host`` (the optional TCP listener)."""
    parser.add_argument(
        "--api-port",
        type=int,
        metavar="PORT",
        help="also serve the API on TCP (0: any free port); a token is required "
        "($DEVSTER_TOKEN, else a random one written to the runtime directory)",
    )
    parser.add_argument(
        "--api-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address of the TCP listener (default: 127.0.0.1)",
    )


def take_lock(loaded: LoadedProject) -> EngineLock:
    """Take the project's single-instance lock.

    Raises:
        AlreadyRunning: another engine holds it (exit 5).
        RuntimeDirError: the runtime directory is not safe to use (exit 2).
    """
    from devster_tui.api.paths import acquire

    return acquire(loaded.file)


@contextlib.asynccontextmanager
async def hosted(
    engine: Engine, lock: EngineLock, args: argparse.Namespace, *, tui: bool = False
) -> AsyncIterator[None]:
    """Serve the API (and the event bus) around one ``devster up`` run.

    With ``tui``, a shutdown asked by a client (``devster down``) also closes the cockpit:
    it is delivered as the SIGTERM the cockpit already handles (only while a handler is
    installed, so a late request can never kill the process by default action).
    """
    from devster_tui.api.host import serve_engine
    from devster_tui.api.paths import INFO_NAME

    unsubscribe = None
    if tui:
        import signal

        from devster_tui.state.events import T

        loop = asyncio.get_running_loop()

        def close_cockpit() -> None:
            if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN, None):
                signal.raise_signal(signal.SIGTERM)

        def on_event(event: Event, _state: object) -> None:
            data = event.data
            if event.type == T.COMMAND and data.get("action") == "shutdown":
                if data.get("by") != "tui":
                    loop.call_soon(close_cockpit)

        unsubscribe = engine.store.subscribe(on_event)

    port = getattr(args, "api_port", None)
    async with serve_engine(
        engine, lock, tcp_host=getattr(args, "api_host", None), tcp_port=port
    ) as server:
        if server.tcp_port is not None:
            sys.stderr.write(
                f"devster: API on http://{args.api_host}:{server.tcp_port} "
                f"(token in {lock.directory / INFO_NAME})\n"
            )
        try:
            yield
        finally:
            if unsubscribe is not None:
                unsubscribe()
