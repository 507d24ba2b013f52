"""Selectors: derived views of the engine state shared by every client (TUI, CLI, replay).

They are pure functions of the state (and, for durations, of a time the caller supplies),
so the TUI, ``devster ps`` and ``devster replay`` show the same numbers.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from devster_tui.state.model import (
    FAILED_STATUSES,
    LIVE_STATUSES,
    EngineState,
    ExitInfo,
    Status,
    TaskState,
)


def tasks(state: EngineState) -> list[TaskState]:
    """All tasks in definition order."""
    return list(state.tasks.values())


def live_tasks(state: EngineState) -> list[TaskState]:
    """Tasks whose process may exist (starting, running, healthy, unhealthy, stopping)."""
    return [task for task in state.tasks.values() if task.status in LIVE_STATUSES]


def failed_tasks(state: EngineState) -> list[TaskState]:
    """Tasks that failed or are blocked (these make headless runs exit non-zero)."""
    return [task for task in state.tasks.values() if task.status in FAILED_STATUSES]


def status_counts(state: EngineState) -> dict[Status, int]:
    """How many tasks are in each status (only statuses that occur)."""
    return dict(Counter(task.status for task in state.tasks.values()))


def uptime(task: TaskState, now_mono: float) -> float | None:
    """Seconds since the current run was spawned, or None when no process runs.

    Args:
        task: The task.
        now_mono: The caller's monotonic clock reading.
    """
    if task.started_mono is None or task.status not in LIVE_STATUSES:
        return None
    return max(0.0, now_mono - task.started_mono)


def format_duration(seconds: float) -> str:
    """An uptime as people read it: ``42s``, ``12m05s``, ``3h12m`` or ``2d04h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def last_exit_summary(task: TaskState) -> str:
    """``exit 0``, ``signal SIGKILL`` or ``-`` when the task never exited."""
    return task.last_exit.summary() if task.last_exit is not None else "-"


def _exit_to_dict(info: ExitInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        "run": info.run,
        "code": info.code,
        "signal": info.signal,
        "success": info.success,
        "wall": info.wall,
        "duration": info.duration,
    }


def task_to_dict(task: TaskState) -> dict[str, Any]:
    """One task as a JSON-ready dict (every field; enums as strings, sets sorted)."""
    return {
        "name": task.name,
        "kind": task.kind,
        "status": task.status.value,
        "reason": task.reason,
        "pid": task.pid,
        "run": task.run,
        "restarts": task.restarts,
        "started_mono": task.started_mono,
        "started_wall": task.started_wall,
        "last_exit": _exit_to_dict(task.last_exit),
        "exits": [_exit_to_dict(info) for info in task.exits],
        "healthy": task.healthy,
        "health_detail": task.health_detail,
        "log_ready": task.log_ready,
        "alarms": sorted(task.alarms),
        "pending": task.pending,
        "gate_prompt": task.gate_prompt,
        "autorestart": task.autorestart,
        "watching": task.watching,
        "backoff_delay": task.backoff_delay,
        "depends_on": dict(task.depends_on),
        "triggers": list(task.triggers),
        "stdin_from": list(task.stdin_from),
        "mode": task.mode,
        "ports": dict(task.ports),
        "host": task.host,
        "environment": task.environment,
        "dropped_lines": task.dropped_lines,
        "last_event_seq": task.last_event_seq,
        "last_lines": list(task.last_lines),
        "restart_policy": task.restart_policy,
        "has_health": task.has_health,
        "autostart": task.autostart,
    }


def state_to_dict(state: EngineState) -> dict[str, Any]:
    """The whole engine state as a JSON-ready dict (``devster replay --json``, the API)."""
    return {
        "project": state.project,
        "config_file": state.config_file,
        "pid": state.pid,
        "running": state.running,
        "stopping": state.stopping,
        "seq": state.seq,
        "mono": state.mono,
        "wall": state.wall,
        "exit_code": state.exit_code,
        "warnings": list(state.warnings),
        "tasks": [task_to_dict(task) for task in state.tasks.values()],
    }


WaitVerdict = Literal["met", "hopeless", "wait"]

_WAIT_MET: dict[str, frozenset[Status]] = {
    "running": frozenset({Status.RUNNING, Status.HEALTHY, Status.UNHEALTHY}),
    "healthy": frozenset({Status.HEALTHY}),
    "succeeded": frozenset({Status.SUCCEEDED}),
    "stopped": frozenset(
        {Status.STOPPED, Status.EXITED, Status.SUCCEEDED, Status.FAILED, Status.BLOCKED}
    ),
}
_WAIT_HOPELESS: dict[str, frozenset[Status]] = {
    "running": frozenset({Status.FAILED, Status.BLOCKED, Status.STOPPED, Status.EXITED}),
    "healthy": frozenset(
        {Status.FAILED, Status.BLOCKED, Status.STOPPED, Status.EXITED, Status.SUCCEEDED}
    ),
    "succeeded": frozenset({Status.FAILED, Status.BLOCKED, Status.STOPPED, Status.EXITED}),
    "stopped": frozenset(),
}
WAIT_CONDITIONS = tuple(_WAIT_MET)
"""What ``devster wait --for`` accepts."""


def wait_verdict(condition: str, status: Status) -> WaitVerdict:
    """Whether ``devster wait --for CONDITION`` is done at ``status`` (docs/lifecycle.md).

    Transient statuses (waiting, starting, stopping, backoff, pending, gated) are waited
    through: the engine publishes an exit's outcome in the exit event itself, so a job
    that succeeds never shows an in-between ``exited``.  ``hopeless`` means the task can
    no longer reach the condition without a new command.
    """
    if status in _WAIT_MET[condition]:
        return "met"
    if status in _WAIT_HOPELESS[condition]:
        return "hopeless"
    return "wait"
