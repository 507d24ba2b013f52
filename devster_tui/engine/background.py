"""One way to run a background task of the engine: :func:`spawn_guarded`.

Why one helper: the engine runs many coroutines beside the caller (each task's lifecycle,
its watchers and stops, observers, pipe pumps, restarts a rule or a trigger asked for).
A bare ``asyncio.create_task`` loses such a task's exception (at best a "Task exception
was never retrieved" at garbage collection) and the task itself may be collected while it
runs when nobody keeps a reference.  Here every background task is guarded, as the house
rules ask of every supervised coroutine: an exception becomes a log line (and, through
``on_error``, an event where the caller reports one), a reference is kept until the task
ends, and a task cancelled before its first step leaves no "never awaited" coroutine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

_running: set[asyncio.Task[None]] = set()
"""Every guarded task that has not ended (the references that keep them alive)."""


def spawn_guarded(
    coro: Coroutine[Any, Any, object],
    name: str,
    *,
    logger: logging.Logger | None = None,
    on_error: Callable[[Exception], None] | None = None,
) -> asyncio.Task[None]:
    """Run ``coro`` as a task named ``devster:NAME``, guarded.

    An exception other than a cancellation ends the task normally (it is not raised to
    whoever awaits the task): it is logged on ``logger`` with its traceback, at ERROR
    level, or at DEBUG level when ``on_error`` reports it (the caller turns it into an
    event, which is what the user sees).  A cancellation propagates as usual.

    Args:
        coro: The job.
        name: What it is (``api``, ``observer:src``, ``dependency restart of api``), for
            the task's name and the log line.
        logger: Where the log line goes (default: this module's logger).
        on_error: Called with the exception (after the log line).

    Returns:
        The task (cancel it to stop the job; awaiting it never raises but a cancellation).
    """
    where = logger if logger is not None else log

    async def guarded() -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if on_error is None:
                where.error("background task %s failed", name, exc_info=exc)
                return
            where.debug("background task %s failed", name, exc_info=exc)
            try:
                on_error(exc)
            except Exception:
                where.exception("reporting the failure of background task %s failed", name)

    task = asyncio.create_task(guarded(), name=f"devster:{name}")
    _running.add(task)
    task.add_done_callback(_ended(coro))
    return task


def _ended(coro: Coroutine[Any, Any, object]) -> Callable[[asyncio.Task[None]], None]:
    def ended(task: asyncio.Task[None]) -> None:
        _running.discard(task)
        # A task cancelled before its first step never awaited ``coro``: close it so that
        # no "coroutine was never awaited" warning follows (a no-op once it has run).
        coro.close()

    return ended
