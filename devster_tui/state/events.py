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
    """Event type names (strings, so logs stay readable and forward-compatible).

    Each type's payload (``Event.data``) is a ``TypedDict`` in
    :mod:`devster_tui.state.payloads`, which says what every key means and which
    ``docs/events.md`` is generated from; ``Store.dispatch`` checks payloads against them.
    """

    ENGINE_STARTED: Final = "engine.started"
    """Payload: :class:`~devster_tui.state.payloads.EngineStarted`."""
    ENGINE_STOPPING: Final = "engine.stopping"
    """Payload: :class:`~devster_tui.state.payloads.EngineStopping`."""
    ENGINE_STOPPED: Final = "engine.stopped"
    """Payload: :class:`~devster_tui.state.payloads.EngineStopped`."""
    TASK_DEFINED: Final = "task.defined"
    """Payload: :class:`~devster_tui.state.payloads.TaskDefined`."""
    TASK_WAITING: Final = "task.waiting"
    """Payload: :class:`~devster_tui.state.payloads.TaskWaiting`."""
    TASK_BLOCKED: Final = "task.blocked"
    """Payload: :class:`~devster_tui.state.payloads.TaskBlocked`."""
    TASK_STARTING: Final = "task.starting"
    """Payload: :class:`~devster_tui.state.payloads.TaskStarting`."""
    TASK_SPAWNED: Final = "task.spawned"
    """Payload: :class:`~devster_tui.state.payloads.TaskSpawned`."""
    TASK_SPAWN_FAILED: Final = "task.spawn_failed"
    """Payload: :class:`~devster_tui.state.payloads.TaskSpawnFailed`."""
    TASK_LOG_READY: Final = "task.log_ready"
    """Payload: :class:`~devster_tui.state.payloads.TaskLogReady`."""
    TASK_HEALTH: Final = "task.health"
    """Payload: :class:`~devster_tui.state.payloads.TaskHealth`."""
    TASK_STOPPING: Final = "task.stopping"
    """Payload: :class:`~devster_tui.state.payloads.TaskStopping`."""
    TASK_EXITED: Final = "task.exited"
    """Payload: :class:`~devster_tui.state.payloads.TaskExited`."""
    TASK_BACKOFF: Final = "task.backoff"
    """Payload: :class:`~devster_tui.state.payloads.TaskBackoff`."""
    TASK_FAILED: Final = "task.failed"
    """Payload: :class:`~devster_tui.state.payloads.TaskFailed`."""
    TASK_SUCCEEDED: Final = "task.succeeded"
    """Payload: :class:`~devster_tui.state.payloads.TaskSucceeded`."""
    TASK_STOPPED: Final = "task.stopped"
    """Payload: :class:`~devster_tui.state.payloads.TaskStopped`."""
    TASK_ALARM: Final = "task.alarm"
    """Payload: :class:`~devster_tui.state.payloads.TaskAlarm`."""
    TASK_PENDING: Final = "task.pending"
    """Payload: :class:`~devster_tui.state.payloads.TaskPending`."""
    TASK_GATE: Final = "task.gate"
    """Payload: :class:`~devster_tui.state.payloads.TaskGate`."""
    TASK_TRIGGERED: Final = "task.triggered"
    """Payload: :class:`~devster_tui.state.payloads.TaskTriggered`."""
    TASK_AUTORESTART: Final = "task.autorestart"
    """Payload: :class:`~devster_tui.state.payloads.TaskAutorestart`."""
    TASK_WATCH: Final = "task.watch"
    """Payload: :class:`~devster_tui.state.payloads.TaskWatch`."""
    TASK_OUTPUT_DROPPED: Final = "task.output_dropped"
    """Payload: :class:`~devster_tui.state.payloads.TaskOutputDropped`."""
    TASK_LINK: Final = "task.link"
    """Payload: :class:`~devster_tui.state.payloads.TaskLink`."""
    COMMAND: Final = "command"
    """Payload: :class:`~devster_tui.state.payloads.ClientCommand`."""
    WARNING: Final = "warning"
    """Payload: :class:`~devster_tui.state.payloads.EngineWarning`."""
    ORPHAN_KILLED: Final = "orphan.killed"
    """Payload: :class:`~devster_tui.state.payloads.OrphanKilled`."""
    TASK_KILLED: Final = "task.killed"
    """Payload: :class:`~devster_tui.state.payloads.TaskKilled`."""


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
    """JSON-serialisable payload; each type's keys are in :mod:`devster_tui.state.payloads`."""
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
