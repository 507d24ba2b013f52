"""What the runners of one engine share: the store waiter, listeners and the runner context.

Why a module of its own: the runner, its watchers, its stop and its dependency wait all
need the same few things (the store, the output store, the executor, the clock, a way to
wait for the next state change); keeping them here, below all of those modules, lets each
be its own module without importing the runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devster_tui.engine.protocols import RunnerHandle
from devster_tui.executors.base import Executor, Process
from devster_tui.state.clock import Clock
from devster_tui.state.model import EngineState
from devster_tui.state.output import OutputStore
from devster_tui.state.store import Store

PortCheck = Callable[[Mapping[str, int]], list[str]]
"""Returns one message per declared port already in use."""


class StateWaiter:
    """Lets coroutines wait for "the store state changed", coalesced per loop iteration.

    The store notifies subscribers synchronously inside ``dispatch``; waking the waiters on
    the next loop iteration means they see the state after a whole synchronous step of the
    supervisor (an exit *and* the restart decision), never a transient in between.
    """

    def __init__(self) -> None:
        """Create a waiter with no pending wake-up."""
        self._futures: list[asyncio.Future[None]] = []
        self._scheduled = False

    def notify(self) -> None:
        """Schedule a wake-up of every current waiter (cheap; call from store subscribers)."""
        if self._scheduled or not self._futures:
            return
        self._scheduled = True
        asyncio.get_running_loop().call_soon(self._wake)

    def _wake(self) -> None:
        self._scheduled = False
        futures, self._futures = self._futures, []
        for fut in futures:
            if not fut.done():
                fut.set_result(None)

    async def changed(self, limit: float | None = None) -> None:
        """Return after the next state change, or after ``limit`` seconds."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._futures.append(fut)
        try:
            if limit is None:
                await fut
            else:
                # Not wait_for: when the wake-up and a cancel (a stop) land in the same loop
                # iteration, wait_for returns the result and swallows the cancel, and the
                # stopped runner waits on forever (a SIGTERM during a dependency wait hung).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(limit):
                        await fut
        finally:
            if fut in self._futures:
                self._futures.remove(fut)

    async def until(self, store: Store, predicate: Callable[[EngineState], bool]) -> None:
        """Return once ``predicate(store.state)`` holds (no timeout: cancel to give up)."""
        while not predicate(store.state):
            await self.changed()


class Listeners:
    """Callbacks without arguments, called in the order they were added (output activity)."""

    def __init__(self) -> None:
        """No listener yet."""
        self._fns: list[Callable[[], None]] = []

    def add(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Call ``fn()`` on every :meth:`notify` from now on.

        Returns:
            A function that removes ``fn`` again.
        """
        self._fns.append(fn)

        def remove() -> None:
            if fn in self._fns:
                self._fns.remove(fn)

        return remove

    def notify(self) -> None:
        """Call every listener."""
        for fn in self._fns:
            fn()


@dataclass
class RunnerContext:
    """What every runner of one engine shares."""

    store: Store
    """Where events go."""
    output: OutputStore
    """Where output chunks go."""
    executor: Executor
    """Starts processes."""
    clock: Clock
    """Monotonic time for policy decisions and durations."""
    root: Path
    """The project directory."""
    waiter: StateWaiter
    """Wakes dependency waits on state changes."""
    check_ports: PortCheck
    """Port conflict check run before each spawn."""
    rng: random.Random = field(default_factory=random.Random)
    """Jitter source."""
    on_output_activity: Callable[[], None] = lambda: None
    """Called after each output chunk is stored (wakes printers)."""
    on_settled: Callable[[RunnerHandle], None] = lambda _r: None
    """Called whenever a runner's lifecycle coroutine ends."""
    on_process: Callable[[RunnerHandle, Process | None], None] = lambda _r, _p: None
    """Called with each spawned process, and with None once it has exited (pipes)."""
    secret_values: Mapping[str, str] = field(default_factory=dict)
    """Secret name -> value, handed to executors as ``ProcessSpec.secret_values``."""
