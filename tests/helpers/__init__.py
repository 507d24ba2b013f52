"""Small shared test helpers: polling with a deadline, liveness of real processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

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


def process_alive(pid: int, start: int | None = None) -> bool:
    """True while ``pid`` runs (zombies count as ended); with ``start``, only that process."""
    from devster_tui.executors.guard import read_stat

    stat = read_stat(pid)
    if stat is None or not stat.alive:
        return False
    return start is None or stat.start == start
