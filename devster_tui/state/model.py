"""Immutable state of an engine: one :class:`TaskState` per task inside an :class:`EngineState`.

Clients compare these objects by identity: the reducer returns the same object when an
event changes nothing, and a new one (sharing unchanged parts) when it does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class Status(StrEnum):
    """Lifecycle status of a task, as shown by every client."""

    DEFINED = "defined"
    """Known but not asked to run (autostart off, profile inactive, not selected)."""
    WAITING = "waiting"
    """Waiting for dependencies to meet their conditions."""
    GATED = "gated"
    """Dependencies met; a manual gate waits for approval."""
    PENDING = "pending"
    """Manual trigger mode: a change happened, waiting for the user to fire it."""
    STARTING = "starting"
    """Ensure steps / spawn in progress."""
    RUNNING = "running"
    """Process alive (health not yet known or no health check)."""
    HEALTHY = "healthy"
    """Process alive and its readiness check passes."""
    UNHEALTHY = "unhealthy"
    """Process alive and its readiness check fails."""
    STOPPING = "stopping"
    """A stop signal was sent; waiting for the process group to end."""
    BACKOFF = "backoff"
    """Exited; waiting for the backoff delay before a restart."""
    SUCCEEDED = "succeeded"
    """A job ended with a success exit code."""
    EXITED = "exited"
    """Ended and not restarted (policy ``no`` for a service, or a job that failed and is
    waiting for its next trigger)."""
    FAILED = "failed"
    """Gave up: spawn error, restart cap reached, job timeout."""
    BLOCKED = "blocked"
    """A dependency condition can no longer be met (or timed out)."""
    STOPPED = "stopped"
    """Stopped by the user or at shutdown; never auto-restarted."""


LIVE_STATUSES = frozenset(
    {Status.STARTING, Status.RUNNING, Status.HEALTHY, Status.UNHEALTHY, Status.STOPPING}
)
"""Statuses in which a process may exist."""

FAILED_STATUSES = frozenset({Status.FAILED, Status.BLOCKED})
"""Statuses that make ``devster up --no-tui`` / ``devster run`` exit non-zero."""


@dataclass(frozen=True, slots=True)
class ExitInfo:
    """How one run ended."""

    run: int
    """Which run (1-based)."""
    code: int | None
    """Exit code, or None when killed by a signal."""
    signal: str | None
    """Terminating signal name, or None."""
    success: bool
    """Whether the exit counts as success (exit 0, or a code in success_exit_codes)."""
    wall: float
    """When it ended (UNIX time)."""
    duration: float
    """How long the run lasted, in seconds."""

    def summary(self) -> str:
        """``exit 0``, ``exit 3`` or ``signal SIGKILL``."""
        if self.signal:
            return f"signal {self.signal}"
        return f"exit {self.code}"


@dataclass(frozen=True, slots=True)
class TaskState:
    """Everything clients show about one task."""

    name: str
    """Task name (fan-out instances are ``task@host``)."""
    kind: str = "service"
    """``service`` or ``job``."""
    status: Status = Status.DEFINED
    """Current lifecycle status."""
    reason: str = ""
    """Why it is in this status (waiting on, blocked by, failed because ...)."""
    pid: int | None = None
    """Process id of the live run, if any."""
    run: int = 0
    """Number of starts so far."""
    restarts: int = 0
    """Automatic and manual restarts so far."""
    started_mono: float | None = None
    """Monotonic time of the current run's spawn (for uptime)."""
    started_wall: float | None = None
    """Wall time of the current run's spawn."""
    last_exit: ExitInfo | None = None
    """The most recent exit."""
    exits: tuple[ExitInfo, ...] = ()
    """Recent exits, newest last (at most 20)."""
    healthy: bool | None = None
    """Readiness result (None: no check, or not yet known)."""
    health_detail: str = ""
    """Last probe detail."""
    log_ready: bool = False
    """The ``ready_log`` line was seen in the current run."""
    alarms: frozenset[str] = frozenset()
    """Active alarms: ``crash_loop``, ``stuck_starting``."""
    pending: bool = False
    """A trigger fired and the task waits (manual mode or queued follow-up)."""
    gate_prompt: str | None = None
    """Prompt of a manual gate that waits for approval, else None."""
    autorestart: bool = True
    """Whether the restart policy is applied (the user can toggle it)."""
    watching: bool = True
    """Whether file triggers are acted on (the user can toggle it)."""
    backoff_delay: float | None = None
    """Current backoff delay, while in BACKOFF."""
    depends_on: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Dependency name -> condition."""
    triggers: tuple[str, ...] = ()
    """Observer names."""
    stdin_from: tuple[str, ...] = ()
    """Pipe sources (``task.stdout`` ...)."""
    mode: str = "normal"
    """``normal`` or ``observe``."""
    ports: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """Declared ports."""
    host: str | None = None
    """Fan-out host name, if this is a per-host instance."""
    environment: str | None = None
    """Environment name, if not local."""
    dropped_lines: int = 0
    """Lines dropped by a ``drop`` pipe feeding this task."""
    last_event_seq: int = 0
    """Sequence number of the last event that changed this task."""
    last_lines: tuple[str, ...] = ()
    """Tail of the output of the last exit or failure (from task.exited / task.failed)."""
    restart_policy: str = "no"
    """Configured restart policy: ``no``, ``on-failure`` or ``always``."""
    has_health: bool = False
    """Whether a readiness check is configured."""
    autostart: bool = True
    """Whether the task starts with the engine (``devster up``)."""


@dataclass(frozen=True, slots=True)
class EngineState:
    """The whole engine, as seen by clients."""

    project: str = ""
    """Project name."""
    config_file: str = ""
    """Path of the project file."""
    pid: int | None = None
    """Engine process id."""
    running: bool = False
    """Between engine.started and engine.stopped."""
    stopping: bool = False
    """Shutdown in progress."""
    tasks: Mapping[str, TaskState] = field(default_factory=lambda: MappingProxyType({}))
    """Tasks by name, in definition order."""
    seq: int = 0
    """Sequence number of the last event that changed the state (events that change
    nothing leave the state object untouched, so clients can compare by identity)."""
    mono: float = 0.0
    """Monotonic time of that event (clients add their own elapsed time)."""
    wall: float = 0.0
    """Wall time of that event."""
    warnings: tuple[str, ...] = ()
    """Recent warnings (at most 50)."""
    exit_code: int | None = None
    """Set by engine.stopped."""
