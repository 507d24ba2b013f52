"""JSON forms of the engine state, commands and output lines exchanged over the API.

Why an exact codec: an attached client rebuilds its state by running the engine's reducer
over the event stream, starting from a snapshot; the snapshot must therefore decode to the
very :class:`~devster_tui.state.model.EngineState` the engine holds, field for field.
Import-light (standard library and the state model only).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from devster_tui.state.commands import ACTIONS, Action, Command, CommandResult
from devster_tui.state.model import EngineState, ExitInfo, Status, TaskState
from devster_tui.state.selectors import state_to_dict, task_to_dict


def _exit_from(raw: Mapping[str, Any]) -> ExitInfo:
    return ExitInfo(
        run=int(raw["run"]),
        code=None if raw.get("code") is None else int(raw["code"]),
        signal=None if raw.get("signal") is None else str(raw["signal"]),
        success=bool(raw["success"]),
        wall=float(raw["wall"]),
        duration=float(raw["duration"]),
    )


task_to_json = task_to_dict
"""Every field of a task state, JSON-ready (the same encoding ``devster replay --json`` uses)."""

state_to_json = state_to_dict
"""Every field of an engine state, JSON-ready (tasks as a list, in order)."""


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def task_from_json(raw: Mapping[str, Any]) -> TaskState:
    """Rebuild a task state from :func:`task_to_json` output.

    Raises:
        ValueError: for a malformed record.
    """
    try:
        last = raw.get("last_exit")
        return TaskState(
            name=str(raw["name"]),
            kind=str(raw["kind"]),
            status=Status(raw["status"]),
            reason=str(raw["reason"]),
            pid=None if raw.get("pid") is None else int(raw["pid"]),
            run=int(raw["run"]),
            restarts=int(raw["restarts"]),
            started_mono=_opt_float(raw.get("started_mono")),
            started_wall=_opt_float(raw.get("started_wall")),
            last_exit=None if last is None else _exit_from(last),
            exits=tuple(_exit_from(e) for e in raw.get("exits", ())),
            healthy=None if raw.get("healthy") is None else bool(raw["healthy"]),
            health_detail=str(raw.get("health_detail", "")),
            log_ready=bool(raw.get("log_ready", False)),
            alarms=frozenset(str(a) for a in raw.get("alarms", ())),
            pending=bool(raw.get("pending", False)),
            gate_prompt=None if raw.get("gate_prompt") is None else str(raw["gate_prompt"]),
            autorestart=bool(raw.get("autorestart", True)),
            watching=bool(raw.get("watching", True)),
            backoff_delay=_opt_float(raw.get("backoff_delay")),
            depends_on=MappingProxyType(
                {str(k): str(v) for k, v in dict(raw.get("depends_on", {})).items()}
            ),
            triggers=tuple(str(t) for t in raw.get("triggers", ())),
            stdin_from=tuple(str(s) for s in raw.get("stdin_from", ())),
            mode=str(raw.get("mode", "normal")),
            ports=MappingProxyType({str(k): int(v) for k, v in dict(raw.get("ports", {})).items()}),
            host=None if raw.get("host") is None else str(raw["host"]),
            environment=None if raw.get("environment") is None else str(raw["environment"]),
            dropped_lines=int(raw.get("dropped_lines", 0)),
            last_event_seq=int(raw.get("last_event_seq", 0)),
            last_lines=tuple(str(s) for s in raw.get("last_lines", ())),
            restart_policy=str(raw.get("restart_policy", "no")),
            has_health=bool(raw.get("has_health", False)),
            autostart=bool(raw.get("autostart", True)),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a task state: {exc!r}") from None


def state_from_json(raw: Mapping[str, Any]) -> EngineState:
    """Rebuild an engine state from :func:`state_to_json` output.

    Raises:
        ValueError: for a malformed record.
    """
    try:
        tasks = [task_from_json(t) for t in raw["tasks"]]
        return EngineState(
            project=str(raw["project"]),
            config_file=str(raw["config_file"]),
            pid=None if raw.get("pid") is None else int(raw["pid"]),
            running=bool(raw["running"]),
            stopping=bool(raw["stopping"]),
            tasks=MappingProxyType({t.name: t for t in tasks}),
            seq=int(raw["seq"]),
            mono=float(raw["mono"]),
            wall=float(raw["wall"]),
            warnings=tuple(str(w) for w in raw.get("warnings", ())),
            exit_code=None if raw.get("exit_code") is None else int(raw["exit_code"]),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not an engine state: {exc!r}") from None


def command_to_json(command: Command) -> dict[str, Any]:
    """A command as the body of ``POST /v1/commands``."""
    body: dict[str, Any] = {"action": command.action, "tasks": list(command.tasks)}
    body["by"] = command.by
    if command.confirmed:
        body["confirmed"] = True
    if command.enabled is not None:
        body["enabled"] = command.enabled
    if command.data:
        body["data"] = base64.b64encode(command.data).decode("ascii")
    if command.always:
        body["always"] = True
    if command.force:
        body["force"] = True
    return body


def command_from_json(raw: Any) -> Command:
    """Validate and decode a ``POST /v1/commands`` body.

    Raises:
        ValueError: with a message for the client when the body is not a valid command.
    """
    if not isinstance(raw, dict):
        raise ValueError("the body must be a JSON object")
    action = raw.get("action")
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
    tasks = raw.get("tasks", [])
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise ValueError("tasks must be a list of task names")
    enabled = raw.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise ValueError("enabled must be true, false or null")
    for flag in ("confirmed", "always", "force"):
        if not isinstance(raw.get(flag, False), bool):
            raise ValueError(f"{flag} must be true or false")
    by = raw.get("by", "api")
    if not isinstance(by, str) or len(by) > 32:
        raise ValueError("by must be a short string")
    data_text = raw.get("data", "")
    try:
        data = base64.b64decode(data_text, validate=True) if data_text else b""
    except (ValueError, TypeError):
        raise ValueError("data must be base64") from None
    known: Action = action
    return Command(
        known,
        tuple(tasks),
        by=by,
        confirmed=bool(raw.get("confirmed", False)),
        enabled=enabled,
        data=data,
        always=bool(raw.get("always", False)),
        force=bool(raw.get("force", False)),
    )


def result_to_json(result: CommandResult) -> dict[str, Any]:
    """A command result as the response body."""
    return {
        "ok": result.ok,
        "message": result.message,
        "needs_confirmation": result.needs_confirmation,
        "unknown": list(result.unknown),
    }


def result_from_json(raw: Mapping[str, Any]) -> CommandResult:
    """Decode a command response body."""
    return CommandResult(
        bool(raw.get("ok")),
        str(raw.get("message", "")),
        bool(raw.get("needs_confirmation", False)),
        tuple(str(name) for name in raw.get("unknown") or ()),
    )


def line_text(data: bytes) -> str:
    """Output bytes as a JSON-safe string; invalid UTF-8 survives as lone surrogates."""
    return data.decode("utf-8", "surrogateescape")


def line_bytes(text: str) -> bytes:
    """Inverse of :func:`line_text`."""
    return text.encode("utf-8", "surrogateescape")
