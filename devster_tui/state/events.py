"""Event envelopes: the one record of everything that happens in an engine.

The supervisor turns every happening (a spawn, an exit, a health probe result, a command
from a client) into an :class:`Event`.  The store stamps it with a sequence number and the
injected clock's monotonic and wall times, the pure reducer folds it into state, and the
event log appends it to disk, so any client (TUI, CLI, a replay) rebuilds the same state
from the same stream.  Output lines are *not* events (see ``state.output``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

SCHEMA_VERSION: Final = 1
"""Version of the envelope format; bump on incompatible changes."""


class T:
    """Event type names (strings, so logs stay readable and forward-compatible)."""

    ENGINE_STARTED: Final = "engine.started"
    """data: project, config_file, pid, tasks (list of names), version."""
    ENGINE_STOPPING: Final = "engine.stopping"
    """data: reason ("signal", "request", "finished"), force (bool)."""
    ENGINE_STOPPED: Final = "engine.stopped"
    """data: exit_code."""
    TASK_DEFINED: Final = "task.defined"
    """data: kind, depends_on (name -> condition), triggers, mode, has_health, ports, host,
    autostart, restart_policy, stdin (list of sources; "console" for console stdin),
    environment, config (the resolved task config, JSON-able, through ``mask_config``)."""
    TASK_WAITING: Final = "task.waiting"
    """data: reason (human text), on (list of dependency names).  Waiting for dependencies."""
    TASK_BLOCKED: Final = "task.blocked"
    """data: reason.  A dependency condition can no longer be met (failed / timed out)."""
    TASK_STARTING: Final = "task.starting"
    """data: run (int, 1-based count of starts), reason ("start", "restart", "trigger", ...)."""
    TASK_SPAWNED: Final = "task.spawned"
    """data: pid, pgid, run, argv_summary (never secret values)."""
    TASK_SPAWN_FAILED: Final = "task.spawn_failed"
    """data: error (e.g. "not found: foo"), errno (int or None)."""
    TASK_LOG_READY: Final = "task.log_ready"
    """data: line (the matching line, truncated)."""
    TASK_HEALTH: Final = "task.health"
    """data: healthy (bool), probe ("health" or "liveness"), detail (text), failures (int)."""
    TASK_STOPPING: Final = "task.stopping"
    """data: reason ("user", "dependency", "shutdown", "restart", "timeout", "liveness"),
    signal (name)."""
    TASK_EXITED: Final = "task.exited"
    """data: run, code (int or None), signal (name or None), success (bool), duration (s),
    stopped (bool: the exit followed a stop request), last_lines (list[str], tail),
    optional why (text: ``container removed``, ``disconnected``)."""
    TASK_BACKOFF: Final = "task.backoff"
    """data: delay (s), attempt (int)."""
    TASK_FAILED: Final = "task.failed"
    """data: reason, last_exit (code/signal summary), last_lines (list[str])."""
    TASK_SUCCEEDED: Final = "task.succeeded"
    """data: run, duration.  A job ended with a success code."""
    TASK_STOPPED: Final = "task.stopped"
    """data: reason.  Terminal state after an explicit stop; never auto-restarted."""
    TASK_ALARM: Final = "task.alarm"
    """data: alarm ("crash_loop", "stuck_starting"), active (bool), detail."""
    TASK_PENDING: Final = "task.pending"
    """data: trigger (observer name), detail.  A trigger fired but the task waits (manual
    trigger mode, or a run in progress queued one follow-up)."""
    TASK_GATE: Final = "task.gate"
    """data: observer, prompt, waiting (bool).  A manual gate waits for approval."""
    TASK_TRIGGERED: Final = "task.triggered"
    """data: trigger (observer name or "user"), detail."""
    TASK_AUTORESTART: Final = "task.autorestart"
    """data: enabled (bool).  The user toggled auto-restart."""
    TASK_WATCH: Final = "task.watch"
    """data: enabled (bool).  The user toggled file watching for this task."""
    TASK_OUTPUT_DROPPED: Final = "task.output_dropped"
    """data: consumer, lines (int).  A pipe with backpressure "drop" discarded lines."""
    TASK_LINK: Final = "task.link"
    """data: state ("disconnected", "connected"), detail.  A remote task's link dropped
    (it reconnects with backoff) or came back."""
    COMMAND: Final = "command"
    """data: action, by ("tui", "cli", "api"), confirmed (bool).  A client's command."""
    WARNING: Final = "warning"
    """data: message.  Something the user should know (e.g. host key checking is off)."""
    ORPHAN_KILLED: Final = "orphan.killed"
    """data: pid, pgid, task.  A process left by an earlier devster was ended."""
    TASK_KILLED: Final = "task.killed"
    """data: pid, name (command name), signal (name), why ("escaped": it had left the
    task's process group, e.g. with setsid; "stop timeout": still running when the stop's
    grace ran out; "killed": a stop with SIGKILL at once; "orphan": left by an earlier
    devster), process ("task", "health", "liveness", "stop").  Devster sent SIGKILL to a
    process, or ended one that had escaped its task."""


@dataclass(frozen=True, slots=True)
class Event:
    """One immutable event envelope.

    Attributes are stamped by the store; the supervisor only supplies ``type``, ``task``
    and ``data``.
    """

    seq: int
    """Sequence number, 1-based, gap-free within one engine run."""
    mono: float
    """Monotonic clock reading (seconds) when the event happened."""
    wall: float
    """Wall clock (UNIX seconds) when the event happened."""
    type: str
    """One of the :class:`T` names."""
    task: str | None = None
    """The task it concerns, if any."""
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """JSON-serialisable payload; see :class:`T` for each type's keys."""
    v: int = SCHEMA_VERSION
    """Envelope schema version."""

    def to_dict(self) -> dict[str, Any]:
        """The envelope as a plain JSON-ready dict."""
        return {
            "v": self.v,
            "seq": self.seq,
            "mono": self.mono,
            "wall": self.wall,
            "type": self.type,
            "task": self.task,
            "data": dict(self.data),
        }

    def to_json(self) -> str:
        """One line of compact JSON (no newline)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Event:
        """Rebuild an event from :meth:`to_dict` output.

        Raises:
            ValueError: when a required field is missing or has the wrong type.
        """
        try:
            return cls(
                seq=int(raw["seq"]),
                mono=float(raw["mono"]),
                wall=float(raw["wall"]),
                type=str(raw["type"]),
                task=None if raw.get("task") is None else str(raw["task"]),
                data=MappingProxyType(dict(raw.get("data") or {})),
                v=int(raw.get("v", SCHEMA_VERSION)),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an event envelope: {exc}") from None

    @classmethod
    def from_json(cls, line: str | bytes) -> Event:
        """Parse one JSON line.

        Raises:
            ValueError: on malformed JSON or a malformed envelope.
        """
        raw = json.loads(line)
        if not isinstance(raw, dict):
            raise ValueError("not an event envelope: not a JSON object")
        return cls.from_dict(raw)
