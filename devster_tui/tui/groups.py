"""Host fan-out groups in the cockpit: which rows are ``task@host`` instances of one task, the
group's summary state, and the group's merged output with each line prefixed by its host.

Why a merged view here: the output store keeps one window per task; a group's pane has to
show every instance at once, in arrival order as far as the cockpit can tell (the ~25 Hz
pump reads each instance's new lines in turn), and name the host on every line.  The merged
window is bounded like a task's and is built only for groups that a pane actually shows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice

from devster_tui.state.model import Status, TaskState
from devster_tui.tui.bridge import LineLike, OutputView

HOST_SEPARATOR = "@"
"""Joins a task name and a host name in an instance's name (as the engine does)."""

GROUP_ORDER: tuple[Status, ...] = (
    Status.FAILED,
    Status.BLOCKED,
    Status.UNHEALTHY,
    Status.BACKOFF,
    Status.EXITED,
    Status.STOPPING,
    Status.STARTING,
    Status.WAITING,
    Status.GATED,
    Status.PENDING,
    Status.RUNNING,
    Status.HEALTHY,
    Status.SUCCEEDED,
    Status.DEFINED,
)
"""Statuses from the one that most needs attention; a group shows the first one any of its
instances has."""

Groups = Mapping[str, Sequence[tuple[str, str]]]
"""Group (task) name -> its instances as ``(instance name, host)``, in definition order."""


def group_of(task: TaskState) -> str | None:
    """The fanned-out task that ``task`` is an instance of (None: not an instance)."""
    host = task.host
    if not host:
        return None
    base, sep, rest = task.name.rpartition(HOST_SEPARATOR)
    return base if sep and base and rest == host else None


def host_groups(tasks: Mapping[str, TaskState]) -> dict[str, list[tuple[str, str]]]:
    """Every group of ``tasks`` with its instances, in definition order."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, task in tasks.items():
        group = group_of(task)
        if group is not None and task.host is not None and group not in tasks:
            groups.setdefault(group, []).append((name, task.host))
    return groups


def group_state(name: str, instances: Sequence[TaskState]) -> TaskState:
    """A summary row for a group: the status that most needs attention, summed restarts,
    every alarm, health only when all instances agree."""
    statuses = {t.status for t in instances}
    status = next((s for s in GROUP_ORDER if s in statuses), Status.DEFINED)
    health = {t.healthy for t in instances}
    healthy = False if False in health else (True if health == {True} else None)
    first = instances[0] if instances else TaskState(name=name)
    alarms: frozenset[str] = frozenset().union(*(t.alarms for t in instances))
    return TaskState(
        name=name,
        kind=first.kind,
        status=status,
        restarts=sum(t.restarts for t in instances),
        healthy=healthy,
        alarms=alarms,
        mode=first.mode,
        pending=any(t.pending for t in instances),
        autorestart=all(t.autorestart for t in instances),
        watching=all(t.watching for t in instances),
        triggers=first.triggers,
        environment=first.environment,
    )


@dataclass(frozen=True, slots=True)
class GroupLine:
    """One line of a group's merged output (a ``LineLike``)."""

    n: int
    """Absolute index in the merged view."""
    stream: str
    """``stdout``, ``stderr`` or ``marker``."""
    data: bytes
    """``HOST | `` followed by the instance's raw line."""
    run: int
    """The instance's run that printed it."""


class _Merged:
    __slots__ = ("cursors", "lines", "total")

    def __init__(self, keep: int) -> None:
        self.lines: deque[GroupLine] = deque(maxlen=keep)
        self.cursors: dict[str, int] = {}
        self.total = 0


READ_CHUNK = 2000
"""Lines read from one instance per call while catching up."""


class GroupedOutput:
    """An ``OutputView`` that also answers for group names: their instances' lines merged,
    each prefixed by its host; every other name goes to the output store unchanged."""

    def __init__(self, inner: OutputView, groups: Callable[[], Groups], keep: int = 10000) -> None:
        """Wrap ``inner``.

        Args:
            inner: The output store.
            groups: The current groups (the task list's).
            keep: Merged lines kept per group and view.
        """
        self._inner = inner
        self._groups = groups
        self._keep = max(1, keep)
        self._merged: dict[tuple[str, str], _Merged] = {}

    def _sync(self, task: str, view: str) -> _Merged | None:
        members = self._groups().get(task)
        if members is None:
            return None
        merged = self._merged.get((task, view))
        if merged is None:
            merged = self._merged[(task, view)] = _Merged(self._keep)
        inner = self._inner
        for instance, host in members:
            cursor = max(merged.cursors.get(instance, 0), inner.first(instance, view))
            end = inner.end(instance, view)
            prefix = f"{host} | ".encode()
            while cursor < end:
                lines: Sequence[LineLike] = inner.read(
                    instance, view, cursor, min(READ_CHUNK, end - cursor)
                )
                if not lines:
                    break
                for line in lines:
                    merged.lines.append(
                        GroupLine(merged.total, line.stream, prefix + line.data, line.run)
                    )
                    merged.total += 1
                cursor = lines[-1].n + 1
            merged.cursors[instance] = max(cursor, end)
        return merged

    def read(self, task: str, view: str, start: int, limit: int) -> Sequence[LineLike]:
        """Lines ``start .. start+limit`` of ``view`` of a task or a group."""
        merged = self._sync(task, view)
        if merged is None:
            return self._inner.read(task, view, start, limit)
        first = merged.total - len(merged.lines)
        begin = max(start, first) - first
        stop = min(merged.total, start + max(0, limit)) - first
        return list(islice(merged.lines, begin, max(begin, stop)))

    def end(self, task: str, view: str) -> int:
        """Index one past the newest line of a task or a group."""
        merged = self._sync(task, view)
        return self._inner.end(task, view) if merged is None else merged.total

    def first(self, task: str, view: str) -> int:
        """Oldest index still in memory for a task or a group."""
        merged = self._sync(task, view)
        if merged is None:
            return self._inner.first(task, view)
        return merged.total - len(merged.lines)
