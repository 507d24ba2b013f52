"""The event bus: every event envelope published to NATS JetStream, one subject per project.

Why JetStream: a teammate on another machine attaches to the stream (``devster attach
--bus``) and rebuilds the cockpit with the same reducer from the first event of the run,
however late they join; the stream keeps the run's events, core NATS would not.  The
publisher purges the project's subject when it starts (with the engine), so the stream
holds exactly one run.  Publishing never blocks the engine: events are queued by a store
subscriber and sent in order by one task; while the server is unreachable they wait in a
bounded queue and a warning event says so.  Output lines are not published (state only).
A client of the store like the TUI, so it lives in ``clients/``, not in the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Final

from devster_tui.state.events import Event, T
from devster_tui.state.model import EngineState
from devster_tui.state.store import Store

log = logging.getLogger(__name__)

MAX_QUEUE: Final = 100_000
"""Events held while the server is unreachable; older ones are dropped beyond."""
STREAM_MAX_MSGS: Final = 1_000_000
"""Messages a project's stream keeps."""
RETRY: Final = 2.0
"""Seconds between connection attempts."""


def _token(project: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", project) or "_"


def subject(project: str) -> str:
    """The subject a project's events go to: ``devster.PROJECT.events``."""
    return f"devster.{_token(project)}.events"


def stream_name(project: str) -> str:
    """The JetStream stream holding a project's events: ``DEVSTER_PROJECT``."""
    return f"DEVSTER_{_token(project)}"


class EventBus:
    """Publishes a store's events to NATS JetStream."""

    def __init__(self, url: str, project: str, store: Store) -> None:
        """Prepare a publisher; :meth:`start` connects and subscribes to the store.

        Args:
            url: ``nats://HOST:PORT``.
            project: Project name (picks the subject and stream).
            store: The engine's store.
        """
        self.url = url
        """The server."""
        self.project = project
        """The project name."""
        self.subject = subject(project)
        """Where events go."""
        self.published = 0
        """Events acknowledged by the server."""
        self._store = store
        self._queue: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._dropped = 0
        self._task: asyncio.Task[None] | None = None
        self._nc: Any = None
        self._closing = False
        self._unsubscribe = store.subscribe(self._on_event)

    def _on_event(self, event: Event, _state: EngineState) -> None:
        if len(self._queue) >= MAX_QUEUE:
            self._queue.popleft()
            self._dropped += 1
        self._queue.append(event)
        self._wake.set()

    def start(self) -> None:
        """Start connecting and publishing in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="devster:bus")

    async def _connect(self) -> Any:
        import nats
        from nats.js.api import StreamConfig

        warned = False
        while True:
            nc: Any = None
            try:
                nc = await nats.connect(
                    self.url,
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=RETRY,
                )
                js = nc.jetstream()
                config = StreamConfig(
                    name=stream_name(self.project),
                    subjects=[self.subject],
                    max_msgs=STREAM_MAX_MSGS,
                )
                try:
                    await js.add_stream(config)
                except Exception:
                    await js.update_stream(config)
                await js.purge_stream(stream_name(self.project), subject=self.subject)
                self._nc = nc
                return js
            except asyncio.CancelledError:
                self._nc = nc  # aclose drains a connection that was made
                raise
            except Exception as exc:
                if nc is not None:
                    # The stream could not be set up: a connection left open would
                    # reconnect forever, one more per retry.
                    with contextlib.suppress(Exception):
                        await nc.close()
                if not warned:
                    warned = True
                    self._store.dispatch(
                        T.WARNING, message=f"event bus {self.url} unavailable: {exc}; retrying"
                    )
                await asyncio.sleep(RETRY)

    async def _run(self) -> None:
        js = await self._connect()
        queue = self._queue
        while True:
            while queue:
                event = queue[0]
                try:
                    await js.publish(self.subject, event.to_json().encode())
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("event bus publish failed, retrying: %s", exc)
                    await asyncio.sleep(0.2)
                    continue
                queue.popleft()
                self.published += 1
            if self._closing:
                return
            self._wake.clear()
            await self._wake.wait()

    async def aclose(self, grace: float = 5.0) -> None:
        """Publish what is queued (up to ``grace`` seconds), then disconnect."""
        self._unsubscribe()
        self._closing = True
        self._wake.set()
        task = self._task
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), grace)
            except (TimeoutError, Exception):
                await _cancel_within(task, grace)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.drain(), grace)


async def _cancel_within(task: asyncio.Task[None], limit: float) -> None:
    """Cancel ``task`` and wait for it, at most ``limit`` seconds.

    Why not one ``cancel()`` and an unbounded wait: nats-py's ``connect`` can swallow a
    cancellation that lands while it retries a server and go on retrying, and then closing
    the bus (and with it the engine's shutdown) hung.  The cancel is repeated until the
    task ends; one that still runs after ``limit`` is abandoned with a log line.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not task.done() and loop.time() < deadline:
        task.cancel()
        await asyncio.wait({task}, timeout=0.05)
    if not task.done():
        log.warning("event bus: the connection attempt did not end when cancelled; left")
    elif not task.cancelled() and task.exception() is not None:
        log.debug("event bus task ended with an error", exc_info=task.exception())


async def read_events(
    url: str, project: str, *, connect_timeout: float = 5.0
) -> AsyncIterator[Event]:
    """Every event of the project's current run, then new ones as they are published.

    Raises:
        OSError: when the server cannot be reached.
    """
    import nats
    from nats.js.api import DeliverPolicy

    try:
        nc = await nats.connect(url, connect_timeout=connect_timeout, max_reconnect_attempts=-1)
    except Exception as exc:
        raise OSError(f"cannot reach {url}: {exc}") from None
    try:
        js = nc.jetstream()
        sub = await js.subscribe(
            subject(project), ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
        async for msg in sub.messages:
            try:
                yield Event.from_json(msg.data)
            except ValueError:
                log.warning("skipping a malformed event from the bus")
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
