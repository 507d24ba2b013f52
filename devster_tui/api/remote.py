"""A running engine seen from another process: mirrored state, output and a remote controller.

Why: an attached cockpit (``devster attach``, each ``devster web`` browser tab) must show
exactly what the engine's own TUI shows.  :class:`RemoteEngine` rebuilds the state with the
engine's reducer (:meth:`Store.apply`) from a snapshot plus the event stream, reads output
lines over the API into a local window for the (task, view) pairs the UI actually looks at,
and sends commands over the socket.  :class:`BusMirror` does the same from the NATS
JetStream bus, read-only and without output.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import quote

from devster_tui.api.client import Address, ApiError, AsyncClient, NoEngine
from devster_tui.api.codec import command_to_json, line_bytes, result_from_json, state_from_json
from devster_tui.state.commands import Command, CommandResult
from devster_tui.state.events import Event, T
from devster_tui.state.model import EngineState
from devster_tui.state.output import Line
from devster_tui.state.store import Store

log = logging.getLogger(__name__)

POLL: Final = 0.1
"""Seconds between output fetches for the panes in view."""
INTEREST: Final = 3.0
"""Seconds a (task, view) stays fetched after the UI last read it."""
WINDOW: Final = 20_000
"""Lines kept per (task, view) in the local window."""
FIRST_FETCH: Final = 5_000
"""Lines fetched when a pane first looks at a (task, view)."""


class OffsetClock:
    """The engine's monotonic clock, estimated from this process's one."""

    def __init__(self, offset: float = 0.0) -> None:
        """``offset`` is engine time minus local time."""
        self.offset = offset
        """Engine monotonic minus local monotonic, in seconds."""

    def monotonic(self) -> float:
        """The engine's monotonic time now."""
        return time.monotonic() + self.offset

    def wall(self) -> float:
        """Wall clock."""
        return time.time()


class MirrorStore(Store):
    """A store fed with events stamped elsewhere; carries the engine clock estimate."""

    def __init__(self, initial: EngineState, clock: OffsetClock) -> None:
        """Start from ``initial``."""
        super().__init__(clock=clock, initial=initial)
        self.clock = clock
        """The engine clock estimate (the cockpit computes uptimes with it)."""


@dataclass(slots=True)
class _Window:
    base: int = 0
    lines: deque[Line] = field(default_factory=deque)
    first: int = 0
    end: int = 0
    touched: float = 0.0
    primed: bool = False

    @property
    def have_end(self) -> int:
        return self.base + len(self.lines)


class RemoteOutput:
    """An ``OutputView`` over the API: a local window per (task, view) the UI reads."""

    def __init__(self, client: AsyncClient | None) -> None:
        """Read through ``client`` (None: no output, e.g. a bus mirror)."""
        self._client = client
        self._windows: dict[tuple[str, str], _Window] = {}

    def _window(self, task: str, view: str) -> _Window:
        key = (task, view)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window()
        window.touched = time.monotonic()
        return window

    def read(self, task: str, view: str, start: int, limit: int) -> list[Line]:
        """Lines from ``start`` held locally (fewer when not fetched yet)."""
        window = self._window(task, view)
        start = max(start, window.base)
        stop = min(window.have_end, start + max(0, limit))
        if start >= stop:
            return []
        offset = start - window.base
        return [window.lines[i] for i in range(offset, offset + stop - start)]

    def end(self, task: str, view: str) -> int:
        """Index one past the newest line held locally."""
        return self._window(task, view).have_end

    def first(self, task: str, view: str) -> int:
        """Oldest index held locally."""
        return self._window(task, view).base

    def tail(self, task: str, view: str, count: int) -> list[Line]:
        """The newest ``count`` lines held locally."""
        end = self.end(task, view)
        return self.read(task, view, end - count, count)

    async def refresh(self) -> None:
        """Fetch new lines for every (task, view) read recently."""
        if self._client is None:
            return
        now = time.monotonic()
        keys = [k for k, w in self._windows.items() if now - w.touched <= INTEREST]
        await asyncio.gather(*(self._fetch(task, view) for task, view in keys))

    async def _fetch(self, task: str, view: str) -> None:
        assert self._client is not None
        window = self._windows[(task, view)]
        path = f"/v1/tasks/{quote(task, safe='')}/output?view={view}"
        if not window.primed:
            query = f"&tail={FIRST_FETCH}&limit={FIRST_FETCH}"
        else:
            query = f"&start={window.have_end}&limit={FIRST_FETCH}"
        try:
            answer = await self._client.json("GET", path + query)
        except ApiError:
            return
        rows = answer["lines"]
        window.first = int(answer["first"])
        window.end = int(answer["end"])
        if not window.primed:
            window.primed = True
            window.base = int(rows[0][0]) if rows else window.end
            window.lines.clear()
        elif rows and int(rows[0][0]) != window.have_end:
            # The engine's ring moved past our window: restart it at what we received.
            window.base = int(rows[0][0])
            window.lines.clear()
        for n, stream, text, run, partial in rows:
            window.lines.append(
                Line(int(n), str(stream), line_bytes(text), int(run), bool(partial))
            )
        extra = len(window.lines) - WINDOW
        if extra > 0:
            for _ in range(extra):
                window.lines.popleft()
            window.base += extra


class RemoteEngine:
    """A running engine reached over the API: ``store``, ``output`` and ``execute``."""

    def __init__(self, client: AsyncClient, store: MirrorStore, seq: int) -> None:
        """Use :meth:`connect`."""
        self.client = client
        """The API client."""
        self.store = store
        """The mirrored state."""
        self.output = RemoteOutput(client)
        """The output window."""
        self._seq = seq
        self.ended = asyncio.Event()
        """Set when the engine went away (stream closed) or stopped."""

    @classmethod
    async def connect(cls, address: Address) -> RemoteEngine:
        """Fetch the snapshot.

        Raises:
            NoEngine: when nothing answers.
        """
        client = AsyncClient(address)
        before = time.monotonic()
        snapshot = await client.json("GET", "/v1/state")
        after = time.monotonic()
        offset = float(snapshot.get("now", after)) - (before + after) / 2
        store = MirrorStore(state_from_json(snapshot["state"]), OffsetClock(offset))
        return cls(client, store, int(snapshot["seq"]))

    async def execute(self, command: Command) -> CommandResult:
        """Send a command to the engine (a ``Controller``)."""
        try:
            raw = await self.client.json("POST", "/v1/commands", command_to_json(command))
        except (NoEngine, ApiError, OSError, TimeoutError) as exc:
            return CommandResult(False, f"the engine did not take the command: {exc}")
        return result_from_json(raw)

    async def run(self, on_end: Callable[[], None] | None = None) -> None:
        """Apply the event stream and poll output until the engine goes away."""
        poller = asyncio.create_task(self._poll_output())
        try:
            async for line in self.client.stream(f"/v1/events?since={self._seq}&follow=1"):
                if not line:
                    continue
                event = Event.from_dict(json.loads(line))
                if event.seq <= self._seq and event.type != T.ENGINE_STARTED:
                    continue
                self._seq = event.seq
                self.store.apply(event)
        except (NoEngine, ApiError, OSError, ValueError) as exc:
            log.info("event stream ended: %s", exc)
        finally:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
            self.ended.set()
            if on_end is not None:
                on_end()

    async def _poll_output(self) -> None:
        while True:
            with contextlib.suppress(NoEngine, OSError, TimeoutError, ValueError):
                await self.output.refresh()
            await asyncio.sleep(POLL)


class ReadOnly:
    """A controller that refuses everything (bus viewers, replays)."""

    def __init__(self, why: str) -> None:
        """Refuse with ``why``."""
        self.why = why
        """The refusal message."""

    async def execute(self, command: Command) -> CommandResult:
        """Refuse."""
        return CommandResult(False, self.why)


class BusMirror:
    """The cockpit state rebuilt from the NATS JetStream bus (read-only, no output)."""

    def __init__(self, url: str, project: str) -> None:
        """Follow ``project`` on the server at ``url``."""
        self.url = url
        """The NATS server."""
        self.project = project
        """The project followed."""
        self.store = MirrorStore(EngineState(), OffsetClock())
        """The mirrored state."""
        self.output = RemoteOutput(None)
        """No output on the bus."""
        self.controller = ReadOnly("read-only: attached through the event bus")
        """Refuses every command."""
        self.applied = 0
        """Events applied so far."""

    async def run(self, on_event: Callable[[Event], None] | None = None) -> None:
        """Apply the stream's events until cancelled.

        Raises:
            OSError: when the server cannot be reached.
        """
        from devster_tui.clients.bus import read_events

        async for event in read_events(self.url, self.project):
            if event.type == T.ENGINE_STARTED:
                # Engine monotonic at the event, minus local monotonic at the same wall time.
                age = time.time() - event.wall
                self.store.clock.offset = event.mono - (time.monotonic() - age)
            self.store.apply(event)
            self.applied += 1
            if on_event is not None:
                on_event(event)
