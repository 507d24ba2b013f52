"""The pure reducer: ``reduce(state, event) -> state`` for every event type in :class:`T`.

Why pure: the engine, a client attached over the socket and ``devster replay`` must all
arrive at the same state from the same events.  So the reducer does no I/O and reads no
clock (time arrives in the event), and it is *total*: whatever the payload of a recorded
event looks like (an older schema, a hand-edited log), it never raises; a malformed value
falls back to a default.  An event that changes nothing returns the very same state object,
so clients can skip work by comparing identities.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Final

from devster_tui.state.events import Event, T
from devster_tui.state.model import LIVE_STATUSES, EngineState, ExitInfo, Status, TaskState

MAX_EXITS: Final = 20
"""How many exits each task remembers."""
MAX_WARNINGS: Final = 50
"""How many warnings the engine state remembers."""
MAX_LAST_LINES: Final = 50
"""How many output lines an exit or failure keeps."""
MAX_TEXT: Final = 2000
"""Longest text kept from a payload field (reasons, details, warnings)."""

_RUNNING_LIKE: Final = frozenset({Status.RUNNING, Status.HEALTHY, Status.UNHEALTHY})


# -- payload readers: tolerant of whatever a recorded log contains --------------------------


def _str(data: Mapping[str, Any], key: str, default: str = "") -> str:
    value = data.get(key)
    if value is None:
        return default
    text = value if isinstance(value, str) else str(value)
    return text[:MAX_TEXT]


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    return _str(data, key)


def _int(data: Mapping[str, Any], key: str, default: int = 0) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    if isinstance(value, float):
        if not math.isfinite(value):
            return default
        return int(value)
    return value


def _opt_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return _int(data, key)


def _float(data: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    result = float(value)
    return result if math.isfinite(result) else default


def _bool(data: Mapping[str, Any], key: str, default: bool) -> bool:
    value = data.get(key)
    return value if isinstance(value, bool) else default


def _strs(data: Mapping[str, Any], key: str, limit: int = 1000) -> tuple[str, ...]:
    value = data.get(key)
    if isinstance(value, str) or not isinstance(value, list | tuple):
        return ()
    return tuple((item if isinstance(item, str) else str(item))[:MAX_TEXT] for item in value)[
        -limit:
    ]


def _str_map(data: Mapping[str, Any], key: str) -> Mapping[str, str]:
    value = data.get(key)
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): str(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        # A bare list of dependency names means "started".
        return MappingProxyType({str(k): "started" for k in value})
    return MappingProxyType({})


def _int_map(data: Mapping[str, Any], key: str) -> Mapping[str, int]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        return MappingProxyType({})
    return MappingProxyType(
        {str(k): v for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool)}
    )


# -- state updates that preserve identity ----------------------------------------------------


def _touch(state: EngineState, event: Event, **changes: Any) -> EngineState:
    """Apply engine-level ``changes``; the same object when every value is already equal."""
    if all(getattr(state, key) == value for key, value in changes.items()):
        return state
    return replace(state, seq=event.seq, mono=event.mono, wall=event.wall, **changes)


def _update(state: EngineState, event: Event, name: str, **changes: Any) -> EngineState:
    """Apply ``changes`` to task ``name`` (created on first mention).

    Returns the same state object when the task exists and nothing differs.
    """
    task = state.tasks.get(name)
    if task is None:
        task = TaskState(name=name)
    elif all(getattr(task, key) == value for key, value in changes.items()):
        return state
    new_task = replace(task, last_event_seq=event.seq, **changes)
    tasks = dict(state.tasks)
    tasks[name] = new_task
    return replace(
        state, tasks=MappingProxyType(tasks), seq=event.seq, mono=event.mono, wall=event.wall
    )


def _warn(state: EngineState, event: Event, message: str) -> EngineState:
    warnings = (*state.warnings, message[:MAX_TEXT])[-MAX_WARNINGS:]
    return replace(state, warnings=warnings, seq=event.seq, mono=event.mono, wall=event.wall)


# -- the reducer --------------------------------------------------------------------------


def reduce(state: EngineState, event: Event) -> EngineState:
    """Fold one event into the state.

    Pure: no I/O, no clock reads.  Unknown event types and task events without a task are
    ignored.  Returns ``state`` itself when the event changes nothing.

    Args:
        state: The state before the event.
        event: The event to apply.

    Returns:
        The state after the event.
    """
    data = event.data if isinstance(event.data, Mapping) else MappingProxyType({})
    match event.type:
        case T.ENGINE_STARTED:
            return _engine_started(event, data)
        case T.ENGINE_STOPPING:
            return _touch(state, event, stopping=True)
        case T.ENGINE_STOPPED:
            return _touch(
                state, event, running=False, stopping=False, exit_code=_opt_int(data, "exit_code")
            )
        case T.WARNING:
            return _warn(state, event, _str(data, "message"))
        case T.ORPHAN_KILLED:
            who = _str(data, "task") or event.task or "?"
            pid = _opt_int(data, "pid")
            return _warn(state, event, f"ended leftover process {pid} of task {who}")
        case T.TASK_KILLED:
            return _killed(state, event, data)
        case T.COMMAND:
            # Recorded for the timeline; the consequences arrive as their own events.
            return state
    if event.task is None:
        return state
    return _reduce_task(state, event, event.task, data)


def _killed(state: EngineState, event: Event, data: Mapping[str, Any]) -> EngineState:
    """A SIGKILL or an ended escapee: escapees become a warning, the rest only a record.

    A stop's SIGKILL after its grace (or a forced stop) is what the user asked for and
    already shows in the exit; a process that had left its task is news.
    """
    why = _str(data, "why")
    if why != "escaped":
        return state
    name = _str(data, "name")
    what = f"{_opt_int(data, 'pid')}" + (f" ({name})" if name else "")
    return _warn(state, event, f"ended process {what} that escaped task {event.task or '?'}")


def _engine_started(event: Event, data: Mapping[str, Any]) -> EngineState:
    """A new engine run: a fresh state, with the announced tasks in definition order."""
    names = _strs(data, "tasks", limit=100_000)
    tasks = {name: TaskState(name=name, last_event_seq=event.seq) for name in names}
    return EngineState(
        project=_str(data, "project"),
        config_file=_str(data, "config_file"),
        pid=_opt_int(data, "pid"),
        running=True,
        tasks=MappingProxyType(tasks),
        seq=event.seq,
        mono=event.mono,
        wall=event.wall,
    )


def _reduce_task(
    state: EngineState, event: Event, name: str, data: Mapping[str, Any]
) -> EngineState:
    task = state.tasks.get(name) or TaskState(name=name)
    match event.type:
        case T.TASK_DEFINED:
            return _update(
                state,
                event,
                name,
                kind=_str(data, "kind", task.kind) or task.kind,
                depends_on=_str_map(data, "depends_on"),
                triggers=_strs(data, "triggers"),
                mode=_str(data, "mode", task.mode) or task.mode,
                has_health=_bool(data, "has_health", task.has_health),
                ports=_int_map(data, "ports"),
                host=_opt_str(data, "host"),
                autostart=_bool(data, "autostart", task.autostart),
                restart_policy=_str(data, "restart_policy", task.restart_policy)
                or task.restart_policy,
                stdin_from=_strs(data, "stdin"),
                environment=_opt_str(data, "environment"),
            )
        case T.TASK_WAITING:
            return _update(state, event, name, status=Status.WAITING, reason=_str(data, "reason"))
        case T.TASK_BLOCKED:
            return _update(
                state, event, name, status=Status.BLOCKED, reason=_str(data, "reason"), pid=None
            )
        case T.TASK_STARTING:
            run = _int(data, "run", task.run + 1)
            reason = _str(data, "reason", "start")
            restarted = task.run > 0 and reason != "start"
            restarts = 0 if _bool(data, "reset", False) else task.restarts + int(restarted)
            return _update(
                state,
                event,
                name,
                status=Status.STARTING,
                reason=reason,
                run=run,
                restarts=restarts,
                pid=None,
                healthy=None,
                health_detail="",
                log_ready=False,
                pending=False,
                gate_prompt=None,
                backoff_delay=None,
            )
        case T.TASK_SPAWNED:
            return _update(
                state,
                event,
                name,
                status=Status.RUNNING,
                reason="",
                pid=_opt_int(data, "pid"),
                run=_int(data, "run", task.run),
                started_mono=event.mono,
                started_wall=event.wall,
            )
        case T.TASK_SPAWN_FAILED:
            return _update(
                state,
                event,
                name,
                status=Status.FAILED,
                reason=_str(data, "error", "spawn failed"),
                pid=None,
                started_mono=None,
                started_wall=None,
            )
        case T.TASK_LOG_READY:
            return _update(state, event, name, log_ready=True)
        case T.TASK_HEALTH:
            return _health(state, event, task, data)
        case T.TASK_STOPPING:
            reason = _str(data, "detail") or _str(data, "reason")
            return _update(state, event, name, status=Status.STOPPING, reason=reason)
        case T.TASK_EXITED:
            return _exited(state, event, task, data)
        case T.TASK_BACKOFF:
            delay = _float(data, "delay")
            attempt = _int(data, "attempt")
            return _update(
                state,
                event,
                name,
                status=Status.BACKOFF,
                backoff_delay=delay,
                reason=f"restarting in {delay:.3g}s (attempt {attempt})",
            )
        case T.TASK_FAILED:
            return _update(
                state,
                event,
                name,
                status=Status.FAILED,
                reason=_str(data, "reason", "failed"),
                last_lines=_strs(data, "last_lines", MAX_LAST_LINES) or task.last_lines,
                pid=None,
                backoff_delay=None,
            )
        case T.TASK_SUCCEEDED:
            return _update(state, event, name, status=Status.SUCCEEDED, reason="", pid=None)
        case T.TASK_STOPPED:
            return _update(
                state,
                event,
                name,
                status=Status.STOPPED,
                reason=_str(data, "reason"),
                pid=None,
                pending=False,
                gate_prompt=None,
                backoff_delay=None,
                healthy=None,
            )
        case T.TASK_ALARM:
            alarm = _str(data, "alarm")
            if not alarm:
                return state
            active = _bool(data, "active", True)
            alarms = task.alarms | {alarm} if active else task.alarms - {alarm}
            return _update(state, event, name, alarms=alarms)
        case T.TASK_PENDING:
            detail = _str(data, "detail") or f"triggered by {_str(data, 'trigger', '?')}"
            if task.status in LIVE_STATUSES or task.status in {Status.BACKOFF, Status.WAITING}:
                return _update(state, event, name, pending=True)
            return _update(state, event, name, pending=True, status=Status.PENDING, reason=detail)
        case T.TASK_GATE:
            if _bool(data, "waiting", True):
                prompt = _str(data, "prompt") or f"approve {name}?"
                return _update(
                    state, event, name, status=Status.GATED, gate_prompt=prompt, reason=prompt
                )
            if task.status is Status.GATED:
                return _update(
                    state, event, name, status=Status.WAITING, gate_prompt=None, reason="approved"
                )
            return _update(state, event, name, gate_prompt=None)
        case T.TASK_TRIGGERED:
            return _update(state, event, name, pending=False)
        case T.TASK_AUTORESTART:
            return _update(state, event, name, autorestart=_bool(data, "enabled", True))
        case T.TASK_WATCH:
            return _update(state, event, name, watching=_bool(data, "enabled", True))
        case T.TASK_LINK:
            detail = _str(data, "detail")
            if _str(data, "state") == "disconnected":
                status = Status.WAITING if task.status in _RUNNING_LIKE else task.status
                return _update(state, event, name, status=status, reason=f"disconnected: {detail}")
            if task.status is Status.WAITING:
                return _update(state, event, name, status=Status.RUNNING, reason="")
            return state
        case T.TASK_OUTPUT_DROPPED:
            consumer = _str(data, "consumer")
            target = consumer if consumer in state.tasks else name
            current = state.tasks.get(target) or TaskState(name=target)
            lines = max(0, _int(data, "lines"))
            return _update(state, event, target, dropped_lines=current.dropped_lines + lines)
    return state


def _health(
    state: EngineState, event: Event, task: TaskState, data: Mapping[str, Any]
) -> EngineState:
    healthy = _bool(data, "healthy", False)
    detail = _str(data, "detail")
    if _str(data, "probe", "health") != "health":
        # Liveness results only inform; the supervisor acts on failures with its own events.
        return _update(state, event, task.name, health_detail=detail)
    status = task.status
    if status in _RUNNING_LIKE:
        status = Status.HEALTHY if healthy else Status.UNHEALTHY
    return _update(state, event, task.name, healthy=healthy, health_detail=detail, status=status)


_EXIT_NEXT: Final = {
    "start": Status.STARTING,
    "backoff": Status.BACKOFF,
    "stopped": Status.STOPPED,
    "succeeded": Status.SUCCEEDED,
    "exited": Status.EXITED,
    "failed": Status.FAILED,
}
"""``task.exited``'s ``next`` (the engine's decision) -> the status it leads to, so no
client ever sees a transient ``exited`` before ``succeeded`` or ``backoff``."""


def _exited(
    state: EngineState, event: Event, task: TaskState, data: Mapping[str, Any]
) -> EngineState:
    code = _opt_int(data, "code")
    signal = _opt_str(data, "signal")
    info = ExitInfo(
        run=_int(data, "run", task.run),
        code=code,
        signal=signal,
        success=_bool(data, "success", code == 0 and signal is None),
        wall=event.wall,
        duration=max(0.0, _float(data, "duration")),
    )
    status = _EXIT_NEXT.get(_str(data, "next"))
    if status is None:  # a log written before exits carried their outcome
        status = Status.STOPPING if task.status is Status.STOPPING else Status.EXITED
    return _update(
        state,
        event,
        task.name,
        status=status,
        reason=(info.summary() + (f" ({_str(data, 'why')})" if data.get("why") else ""))
        if status is Status.EXITED
        else task.reason,
        last_exit=info,
        exits=(*task.exits, info)[-MAX_EXITS:],
        last_lines=_strs(data, "last_lines", MAX_LAST_LINES),
        pid=None,
        started_mono=None,
        started_wall=None,
        healthy=None,
        log_ready=False,
    )
