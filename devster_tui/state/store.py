"""The store: stamps events, folds them with the reducer, records them and notifies clients.

Why one store: every happening passes through :meth:`Store.dispatch`, so the sequence
numbers are gap-free, every event is stamped by the one injected clock, the event log holds
exactly what subscribers saw, and a client (TUI bridge, API server, headless printer) gets
each event together with the state it produced, synchronously and in order.  A client that
rebuilds state from a stream uses :meth:`Store.apply` with the events it received.

:meth:`Store.dispatch` has one overload per event type whose keyword arguments are that
type's payload (:mod:`devster_tui.state.payloads`), so mypy checks every call's keys and
types while the call itself costs what an untyped one does.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from itertools import islice
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, Unpack, overload

from devster_tui.state.clock import Clock, SystemClock
from devster_tui.state.eventlog import EventLog
from devster_tui.state.events import Event
from devster_tui.state.model import EngineState
from devster_tui.state.reducer import reduce

if TYPE_CHECKING:
    from devster_tui.state.payloads import (
        ClientCommand,
        EngineStarted,
        EngineStopped,
        EngineStopping,
        EngineWarning,
        OrphanKilled,
        TaskAlarm,
        TaskAutorestart,
        TaskBackoff,
        TaskBlocked,
        TaskDefined,
        TaskExited,
        TaskFailed,
        TaskGate,
        TaskHealth,
        TaskKilled,
        TaskLink,
        TaskLogReady,
        TaskOutputDropped,
        TaskPending,
        TaskSpawned,
        TaskSpawnFailed,
        TaskStarting,
        TaskStopped,
        TaskStopping,
        TaskSucceeded,
        TaskTriggered,
        TaskWaiting,
        TaskWatch,
    )

log = logging.getLogger(__name__)

Subscriber = Callable[[Event, EngineState], None]
"""Called as ``fn(event, state_after_event)``."""

DEFAULT_HISTORY: Final = 50_000
"""Events kept in memory for :meth:`Store.events_since`."""


class Store:
    """Holds the engine state and is the only way to change it.

    Not thread-safe: dispatch from the event loop thread.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        eventlog: EventLog | None = None,
        initial: EngineState | None = None,
        *,
        history: int = DEFAULT_HISTORY,
    ) -> None:
        """Create a store.

        Args:
            clock: Stamps events (default: the system clocks).
            eventlog: Where events are recorded (default: nowhere).
            initial: Starting state (default: an empty engine state).
            history: How many recent events :meth:`events_since` can return.
        """
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._eventlog = eventlog
        self._state = initial if initial is not None else EngineState()
        self._seq = self._state.seq
        self._history: deque[Event] = deque(maxlen=max(1, history))
        self._subscribers: list[Subscriber] = []
        self._log_failed = False
        self.redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        """Applied to every dispatched event's data (secret values become
        ``[redacted:NAME]``; see :mod:`devster_tui.state.redact`)."""

    @property
    def state(self) -> EngineState:
        """The current state (immutable; replaced on every change)."""
        return self._state

    @property
    def seq(self) -> int:
        """Sequence number of the last event dispatched or applied."""
        return self._seq

    @property
    def eventlog(self) -> EventLog | None:
        """The event log events are recorded to, if any."""
        return self._eventlog

    # One overload per event type (see devster_tui.state.payloads): mypy checks each call's
    # payload keys and types.  They cost nothing at run time; a test checks they cover T.
    @overload
    def dispatch(
        self, type: Literal["engine.started"], task: None = None, **data: Unpack[EngineStarted]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["engine.stopping"], task: None = None, **data: Unpack[EngineStopping]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["engine.stopped"], task: None = None, **data: Unpack[EngineStopped]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.defined"], task: str, **data: Unpack[TaskDefined]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.waiting"], task: str, **data: Unpack[TaskWaiting]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.blocked"], task: str, **data: Unpack[TaskBlocked]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.starting"], task: str, **data: Unpack[TaskStarting]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.spawned"], task: str, **data: Unpack[TaskSpawned]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.spawn_failed"], task: str, **data: Unpack[TaskSpawnFailed]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.log_ready"], task: str, **data: Unpack[TaskLogReady]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.health"], task: str, **data: Unpack[TaskHealth]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.stopping"], task: str, **data: Unpack[TaskStopping]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.exited"], task: str, **data: Unpack[TaskExited]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.backoff"], task: str, **data: Unpack[TaskBackoff]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.failed"], task: str, **data: Unpack[TaskFailed]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.succeeded"], task: str, **data: Unpack[TaskSucceeded]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.stopped"], task: str, **data: Unpack[TaskStopped]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.alarm"], task: str, **data: Unpack[TaskAlarm]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.pending"], task: str, **data: Unpack[TaskPending]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.gate"], task: str, **data: Unpack[TaskGate]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.triggered"], task: str, **data: Unpack[TaskTriggered]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.autorestart"], task: str, **data: Unpack[TaskAutorestart]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.watch"], task: str, **data: Unpack[TaskWatch]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.output_dropped"], task: str, **data: Unpack[TaskOutputDropped]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.link"], task: str, **data: Unpack[TaskLink]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["task.killed"], task: str | None, **data: Unpack[TaskKilled]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["orphan.killed"], task: str, **data: Unpack[OrphanKilled]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["command"], task: str | None = None, **data: Unpack[ClientCommand]
    ) -> Event: ...
    @overload
    def dispatch(
        self, type: Literal["warning"], task: str | None = None, **data: Unpack[EngineWarning]
    ) -> Event: ...
    def dispatch(self, type: str, task: str | None = None, **data: Any) -> Event:
        """Record that something happened.

        Stamps the next sequence number and the clock's readings, reduces, appends to the
        event log and notifies subscribers (a failing subscriber is logged, never raised).

        Args:
            type: One of the :class:`~devster_tui.state.events.T` names.
            task: The task concerned, if any.
            **data: The JSON-serialisable payload: the keys of the type's payload in
                :mod:`devster_tui.state.payloads` (checked by mypy, not at run time).

        Returns:
            The stamped event.
        """
        if self.redact is not None:
            data = self.redact(data)
        event = Event(
            seq=self._seq + 1,
            mono=self._clock.monotonic(),
            wall=self._clock.wall(),
            type=type,
            task=task,
            data=MappingProxyType(data),
        )
        self._accept(event)
        return event

    def dispatch_raw(self, type: str, task: str | None = None, **data: Any) -> Event:
        """:meth:`dispatch` with a payload mypy does not check.

        For an event whose type is known only at run time, or a payload that deliberately
        does not follow :mod:`~devster_tui.state.payloads` (a test of the reducer's
        tolerance, an older format).  The engine uses :meth:`dispatch`.

        Args:
            type: The event type.
            task: The task concerned, if any.
            **data: The JSON-serialisable payload.

        Returns:
            The stamped event.
        """
        dispatch: Callable[..., Event] = self.dispatch
        return dispatch(type, task, **data)

    def apply(self, event: Event) -> None:
        """Apply an event stamped elsewhere (a client rebuilding from a stream).

        The event keeps its sequence number; it is reduced, recorded and announced like a
        dispatched one.

        Args:
            event: The received event.
        """
        self._accept(event)

    def _accept(self, event: Event) -> None:
        self._seq = event.seq
        self._state = reduce(self._state, event)
        self._history.append(event)
        if self._eventlog is not None:
            try:
                self._eventlog.append(event)
            except (OSError, ValueError, TypeError) as exc:
                if not self._log_failed:
                    log.error("event log write failed, events are not recorded: %s", exc)
                self._log_failed = True
            else:
                self._log_failed = False
        state = self._state
        for fn in tuple(self._subscribers):
            try:
                fn(event, state)
            except Exception:
                log.exception("store subscriber %r failed on event %d", fn, event.seq)

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call ``fn(event, state)`` after every event from now on.

        Returns:
            A function that unsubscribes ``fn`` (safe to call more than once).
        """
        self._subscribers.append(fn)

        def unsubscribe() -> None:
            if fn in self._subscribers:
                self._subscribers.remove(fn)

        return unsubscribe

    def events_since(self, seq: int) -> list[Event]:
        """Events with a sequence number above ``seq``, from the in-memory history.

        When the history no longer reaches back to ``seq + 1``, the result starts later;
        callers detect that by comparing the first event's ``seq``.
        """
        history = self._history
        if not history or history[-1].seq <= seq:
            return []
        offset = seq + 1 - history[0].seq
        if offset <= 0:
            return list(history)
        if offset < len(history) and history[offset].seq == seq + 1:
            return list(islice(history, offset, None))
        # Sequence numbers are not contiguous (applied from several streams): scan.
        return [event for event in history if event.seq > seq]
