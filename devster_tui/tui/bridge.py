"""The bridge from the state store to the UI: one ~25 Hz pump, state compared by identity.

Why: the engine changes state far more often than a screen can show, and output arrives
as hundreds of thousands of lines per second.  Rather than one message per event or per
line, the UI asks at a fixed rate "is ``store.state`` still the same object?" (the reducer
returns the same object when nothing changed) and "what is ``output.end()`` now?".  Only
rows of tasks whose :class:`TaskState` object changed are repainted.  This module is pure
(no Textual) so its logic is unit-tested directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from devster_tui.state.events import Event
from devster_tui.state.model import EngineState, Status, TaskState

PUMP_HZ = 25.0
"""How often the UI looks at the store and the output store."""

VIEWS = ("both", "stdout", "stderr")
"""Output views a log pane can show."""


class LineLike(Protocol):
    """One output line as the output store returns it (``state.output.Line``)."""

    @property
    def n(self) -> int:
        """Absolute index within the view."""
        ...

    @property
    def stream(self) -> str:
        """``stdout``, ``stderr`` or ``marker``."""
        ...

    @property
    def data(self) -> bytes:
        """Raw bytes, no newline."""
        ...

    @property
    def run(self) -> int:
        """Which run printed it."""
        ...


class OutputView(Protocol):
    """The part of ``state.output.OutputStore`` the cockpit reads."""

    def read(self, task: str, view: str, start: int, limit: int) -> Sequence[LineLike]:
        """Lines ``start .. start+limit`` of ``view`` (fewer when not in memory)."""
        ...

    def end(self, task: str, view: str) -> int:
        """Index one past the newest line."""
        ...

    def first(self, task: str, view: str) -> int:
        """Oldest index still in memory."""
        ...


class StoreView(Protocol):
    """The part of ``state.store.Store`` the cockpit reads."""

    @property
    def state(self) -> EngineState:
        """The current immutable state."""
        ...

    def events_since(self, seq: int) -> list[Event]:
        """Events after ``seq`` still held in memory."""
        ...


Severity = Literal["information", "warning", "error"]


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should be told about (a toast)."""

    severity: Severity
    """Toast severity."""
    title: str
    """Short title (usually the task name)."""
    message: str
    """What happened."""


@dataclass(frozen=True, slots=True)
class StateChange:
    """What a pump found changed since the previous one."""

    state: EngineState
    """The new state."""
    changed: frozenset[str]
    """Tasks whose state object changed (or appeared)."""
    structure: bool
    """Tasks were added or removed, or dependencies changed: orderings must be rebuilt."""
    notices: tuple[Notice, ...]
    """Toasts to show."""


ALARM_TEXT: Mapping[str, str] = {
    "crash_loop": "crash loop",
    "stuck_starting": "stuck starting",
}
"""Human names of alarms."""


def notices_for(old: TaskState | None, new: TaskState) -> list[Notice]:
    """Toasts for one task's transition: failures, new alarms, gates starting to wait."""
    result: list[Notice] = []
    if new.status is Status.FAILED and (old is None or old.status is not Status.FAILED):
        detail = new.reason or (new.last_exit.summary() if new.last_exit else "failed")
        result.append(Notice("error", new.name, f"failed: {detail}"))
    elif new.status is Status.BLOCKED and (old is None or old.status is not Status.BLOCKED):
        result.append(Notice("warning", new.name, f"blocked: {new.reason or 'dependency'}"))
    before = old.alarms if old is not None else frozenset()
    for alarm in sorted(new.alarms - before):
        result.append(Notice("warning", new.name, f"alarm: {ALARM_TEXT.get(alarm, alarm)}"))
    if new.gate_prompt is not None and (old is None or old.gate_prompt is None):
        result.append(
            Notice("information", new.name, f"gate waiting: {new.gate_prompt} (a approves)")
        )
    return result


class Bridge:
    """Compares the store's state by identity and reports what changed.

    Args:
        store: Where the state comes from.
        output: Where the output comes from (read by the log panes).
        notify_existing: Also produce notices for the state found at the first poll.
    """

    def __init__(
        self, store: StoreView, output: OutputView, *, notify_existing: bool = False
    ) -> None:
        self.store = store
        """The state store."""
        self.output = output
        """The output store."""
        self._state: EngineState | None = None
        self._notify_existing = notify_existing
        self.polls = 0
        """Pumps run so far (for tests and diagnostics)."""

    @property
    def state(self) -> EngineState:
        """The state seen at the last poll (the store's current one before any poll)."""
        return self._state if self._state is not None else self.store.state

    def poll(self) -> StateChange | None:
        """Look at the store once; None when its state is the very same object as before."""
        self.polls += 1
        new = self.store.state
        old = self._state
        if new is old:
            return None
        self._state = new
        if old is None:
            notices: list[Notice] = []
            if self._notify_existing:
                for task in new.tasks.values():
                    notices.extend(notices_for(None, task))
            return StateChange(new, frozenset(new.tasks), True, tuple(notices))
        changed: set[str] = set()
        notices = []
        structure = list(old.tasks) != list(new.tasks)
        for name, task in new.tasks.items():
            before = old.tasks.get(name)
            if before is task:
                continue
            changed.add(name)
            if before is None or before.depends_on != task.depends_on:
                structure = True
            notices.extend(notices_for(before, task))
        return StateChange(new, frozenset(changed), structure, tuple(notices))


def counts(state: EngineState) -> dict[Status, int]:
    """Number of tasks per status (only statuses that occur), in Status order."""
    found: dict[Status, int] = {}
    for task in state.tasks.values():
        found[task.status] = found.get(task.status, 0) + 1
    return {s: found[s] for s in Status if s in found}


def tree_order(tasks: Mapping[str, TaskState]) -> list[tuple[str, int, str]]:
    """Tasks ordered as a tree by dependency: ``(name, depth, guide prefix)``.

    A dependent is placed under the dependency that starts last (its deepest one), so
    every task appears once and below everything it depends on; roots and siblings keep
    definition order.
    """
    names = list(tasks)
    depth: dict[str, int] = {}

    def level(name: str, seen: frozenset[str]) -> int:
        if name in depth:
            return depth[name]
        deps = [d for d in tasks[name].depends_on if d in tasks and d not in seen]
        value = 0 if not deps else 1 + max(level(d, seen | {name}) for d in deps)
        depth[name] = value
        return value

    for name in names:
        level(name, frozenset())
    children: dict[str | None, list[str]] = {}
    for name in names:
        deps = [d for d in tasks[name].depends_on if d in tasks and depth[d] < depth[name]]
        parent = max(deps, key=lambda d: depth[d]) if deps else None
        children.setdefault(parent, []).append(name)
    result: list[tuple[str, int, str]] = []

    def walk(parent: str | None, indent: str, level_: int) -> None:
        kids = children.get(parent, [])
        for i, name in enumerate(kids):
            last = i == len(kids) - 1
            if parent is None:
                prefix = ""
                child_indent = ""
            else:
                prefix = indent + ("└─" if last else "├─")
                child_indent = indent + ("  " if last else "│ ")
            result.append((name, level_, prefix))
            walk(name, child_indent, level_ + 1)

    walk(None, "", 0)
    return result


Clock = Callable[[], float]
"""A monotonic clock reading, in seconds."""
