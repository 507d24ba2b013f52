"""Small shared test helpers: polling with a deadline, engine state, the CLI, live processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from devster_tui.engine.supervisor import Engine
    from devster_tui.state.model import EngineState

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], object], timeout: float = 5.0, *, what: str = "condition"
) -> None:
    """Poll ``predicate`` until it is true.

    Raises:
        AssertionError: when ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    pause = 0.001
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 2, 0.02)


async def async_wait_for(
    predicate: Callable[[], object], within: float = 5.0, *, what: str = "condition"
) -> None:
    """:func:`wait_for` for coroutines: the event loop keeps running while it polls.

    Raises:
        AssertionError: when ``within`` seconds pass first.
    """
    deadline = time.monotonic() + within
    pause = 0.001
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.02)


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """Run ``coro`` in a fresh event loop, failing after ``timeout`` seconds."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def wait_state(
    engine: Engine, predicate: Callable[[EngineState], bool], limit: float = 15.0
) -> EngineState:
    """Wait until ``predicate(state)`` holds, re-checking on every event.

    Raises:
        TimeoutError: when ``limit`` seconds pass first.
    """
    changed = asyncio.Event()
    unsubscribe = engine.store.subscribe(lambda _e, _s: changed.set())
    try:
        async with asyncio.timeout(limit):
            while not predicate(engine.store.state):
                changed.clear()
                await changed.wait()
    finally:
        unsubscribe()
    return engine.store.state


def devster_cli(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``devster ARGS`` as a subprocess of this interpreter and capture its text output."""
    return subprocess.run(
        [sys.executable, "-m", "devster_tui", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def process_alive(pid: int, start: int | None = None) -> bool:
    """True while ``pid`` runs (zombies count as ended); with ``start``, only that process."""
    from devster_tui.executors.guard import read_stat

    stat = read_stat(pid)
    if stat is None or not stat.alive:
        return False
    return start is None or stat.start == start
