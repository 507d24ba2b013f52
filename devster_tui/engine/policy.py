"""Pure supervision decisions: restart policy with backoff, dependency conditions, alarms.

Why pure: every rule that decides *whether* and *when* something happens lives here as a
function of its inputs (configuration, previous policy state, a time reading, a random
source), so it is unit-tested over a fake clock and a seeded random without processes.
The runner only carries the decisions out.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal

from devster_tui.config.schema import Backoff, RestartPolicy, Rule, default_on_restart
from devster_tui.state.model import Status, TaskState

DEFAULT_DEPENDENCY_TIMEOUT = 300.0
"""Seconds a dependent waits for a service's started/healthy/log_ready condition by default."""


# --------------------------------------------------------------------------- restarts


@dataclass(frozen=True, slots=True)
class PolicyState:
    """What the restart policy remembers about one task between exits."""

    attempt: int = 0
    """Consecutive restarts since the last stable run (0: the next delay is ``initial``)."""
    restart_times: tuple[float, ...] = ()
    """Monotonic times of recent automatic restarts, oldest first."""


Verdict = Literal["restart", "exit", "give_up"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do after an exit."""

    verdict: Verdict
    """``restart`` after ``delay``, ``exit`` (the policy does not restart), or ``give_up``."""
    delay: float = 0.0
    """Seconds to wait before the restart."""
    attempt: int = 0
    """1-based number of this consecutive restart."""
    reason: str = ""
    """Why the task is given up (``restarted 5 times within 60s``)."""


def backoff_delay(spec: Backoff, attempt: int, rng: random.Random) -> float:
    """The delay before consecutive restart number ``attempt`` (0-based).

    ``initial * factor**attempt`` capped at ``max``, spread by ``+-jitter`` of itself (and
    never above ``max`` nor below 0).

    Args:
        spec: The backoff settings.
        attempt: How many restarts in a row came before this one.
        rng: The random source for the jitter (seed it in tests).

    Returns:
        The delay in seconds.
    """
    base = spec.initial
    for _ in range(attempt):
        base *= spec.factor
        if base >= spec.max:
            break
    base = min(base, spec.max)
    if spec.jitter > 0 and base > 0:
        base *= 1.0 + rng.uniform(-spec.jitter, spec.jitter)
    return max(0.0, min(base, spec.max))


def wants_restart(policy: str, success: bool) -> bool:
    """Whether ``policy`` (no / on-failure / always) restarts after an exit."""
    if policy == "always":
        return True
    if policy == "on-failure":
        return not success
    return False


def decide(
    spec: RestartPolicy,
    state: PolicyState,
    *,
    now: float,
    ran_for: float,
    success: bool,
    rng: random.Random,
) -> tuple[Decision, PolicyState]:
    """Decide what follows an exit, and return the updated policy state.

    A run that lasted ``stable_after`` or longer resets the backoff.  With ``max_restarts``
    set, a restart that would be number ``max_restarts + 1`` within ``window`` gives up.

    Args:
        spec: The task's restart policy.
        state: The policy state after the previous exit.
        now: Monotonic time of the exit.
        ran_for: How long the run lasted (seconds).
        success: Whether the exit counts as success.
        rng: Random source for the jitter.

    Returns:
        The decision and the new policy state.
    """
    if ran_for >= spec.stable_after:
        state = replace(state, attempt=0)
    if not wants_restart(spec.policy, success):
        return Decision("exit"), state
    recent = tuple(t for t in state.restart_times if now - t < spec.window)
    if spec.max_restarts is not None and len(recent) >= spec.max_restarts:
        reason = (
            f"restarted {len(recent)} times within {_fmt_seconds(spec.window)} "
            f"(max_restarts {spec.max_restarts})"
        )
        return Decision("give_up", reason=reason), replace(state, restart_times=recent)
    delay = backoff_delay(spec.backoff, state.attempt, rng)
    new_state = PolicyState(attempt=state.attempt + 1, restart_times=(*recent, now))
    return Decision("restart", delay=delay, attempt=state.attempt + 1), new_state


def crash_looping(
    restart_times: Sequence[float], now: float, threshold: int, window: float
) -> bool:
    """Whether ``threshold`` or more restarts happened within ``window`` before ``now``."""
    return sum(1 for t in restart_times if now - t < window) >= threshold


def _fmt_seconds(seconds: float) -> str:
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:g}s"


# --------------------------------------------------------------------------- exits


class StopReason(StrEnum):
    """Why devster stopped a task's process (``task.stopping``'s ``reason``)."""

    USER = "user"
    """A client's stop command."""
    SHUTDOWN = "shutdown"
    """The engine is stopping (Ctrl-C, SIGTERM, ``devster down``, a closed terminal)."""
    DEPENDENCY = "dependency"
    """A dependency's ``on_failure``/``on_restart`` rule says ``stop``."""
    RESTART = "restart"
    """A restart (a command, a trigger, a dependency's rule): the task starts again."""
    TIMEOUT = "timeout"
    """A job ran past its ``timeout``."""
    LIVENESS = "liveness"
    """Its liveness check failed."""

    @property
    def final(self) -> bool:
        """Whether the task stays stopped afterwards (no restart, no trigger until a start)."""
        return self in _FINAL_STOPS


_FINAL_STOPS = frozenset({StopReason.USER, StopReason.SHUTDOWN, StopReason.DEPENDENCY})


def exit_success(
    code: int | None, signal: int | None, success_codes: Sequence[int], stop: StopReason | None
) -> bool:
    """Whether an exit counts as success.

    Exit 0 always does; ``success_exit_codes`` adds codes to it (process-compose's rule).
    A signal, a job timeout or a failed liveness check never does.
    """
    if signal is not None or code is None:
        return False
    if stop in (StopReason.TIMEOUT, StopReason.LIVENESS):
        return False
    return code == 0 or code in success_codes


class Next(StrEnum):
    """What follows an exit (the exit table of docs/lifecycle.md)."""

    START = "start"
    """Start again at once (a requested restart)."""
    BACKOFF = "backoff"
    """Start again after the policy's delay."""
    STOPPED = "stopped"
    """Stay stopped: the user, the shutdown or a dependency stopped it."""
    SUCCEEDED = "succeeded"
    """A job ended well; it runs again only when triggered or started."""
    EXITED = "exited"
    """A service ended and its policy does not restart it."""
    FAILED = "failed"
    """Failed: a job's unsuccessful end, a timeout, or a restart limit hit by failures."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The decision after one exit."""

    next: Next
    """What follows."""
    reason: str = ""
    """Why it failed (``FAILED``), or which stop it was (``STOPPED``)."""
    delay: float = 0.0
    """Seconds before the restart (``BACKOFF``)."""
    attempt: int = 0
    """1-based consecutive restart number (``BACKOFF``)."""


def after_exit(
    *,
    kind: str,
    spec: RestartPolicy,
    state: PolicyState,
    stop: StopReason | None,
    success: bool,
    ran_for: float,
    now: float,
    autorestart: bool = True,
    timeout: float | None = None,
    rng: random.Random,
) -> tuple[Outcome, PolicyState]:
    """Decide what follows an exit of a task's process.

    Args:
        kind: ``job`` or ``service``.
        spec: The task's restart policy.
        state: The policy state after the previous exit.
        stop: Why devster stopped the process, if it did.
        success: Whether the exit counts as success (:func:`exit_success`).
        ran_for: How long the run lasted (seconds).
        now: Monotonic time of the exit.
        autorestart: The user's auto-restart toggle (off: policy ``no``).
        timeout: The job's timeout (for the failure text).
        rng: Random source for the backoff jitter.

    Returns:
        The outcome and the new policy state.
    """
    if stop is StopReason.RESTART:
        return Outcome(Next.START), state
    if stop is not None and stop.final:
        return Outcome(Next.STOPPED, reason=stop.value), state
    if stop is StopReason.TIMEOUT:
        limit = f" after {timeout:g}s" if timeout is not None else ""
        return Outcome(Next.FAILED, reason=f"timed out{limit}"), state
    policy = spec if autorestart else spec.model_copy(update={"policy": "no"})
    decision, new_state = decide(policy, state, now=now, ran_for=ran_for, success=success, rng=rng)
    ended = Next.SUCCEEDED if kind == "job" else Next.EXITED
    if decision.verdict == "restart":
        return Outcome(Next.BACKOFF, delay=decision.delay, attempt=decision.attempt), new_state
    if success:
        # A restart limit reached through clean exits is no failure.
        return Outcome(ended), new_state
    if decision.verdict == "give_up":
        return Outcome(Next.FAILED, reason=decision.reason), new_state
    if kind == "job":
        return Outcome(Next.FAILED), new_state  # the exit itself is the reason
    return Outcome(Next.EXITED), new_state


# --------------------------------------------------------------------------- triggers

TriggerSource = Literal["files", "interval", "task", "log", "manual", "user"]
TriggerAction = Literal["ignore", "pending", "queue", "restart", "start"]


def on_trigger(
    *,
    source: TriggerSource,
    status: Status,
    kind: str,
    live: bool,
    active: bool,
    manual_mode: bool,
    watching: bool,
) -> TriggerAction:
    """What a trigger does to one task (the trigger table of docs/lifecycle.md).

    A task the user stopped stays stopped (only the user's own trigger starts it), file
    triggers respect the per-task watch toggle, ``trigger_mode: manual`` only marks the
    task pending, a running job queues exactly one follow-up run (never a second
    concurrent run), a running service restarts, and an idle task starts with what it
    depends on.  A task waiting or in backoff is already on its way: nothing to do.
    """
    if source != "user":
        if status is Status.STOPPED:
            return "ignore"
        if source == "files" and not watching:
            return "ignore"
        if manual_mode and source != "manual":
            return "pending"
    if live:
        return "queue" if kind == "job" else "restart"
    if active:
        return "ignore"
    return "start"


# --------------------------------------------------------------------------- commands

StopAction = Literal["stop", "disarm"]


def on_stop_command(active: bool) -> StopAction:
    """A user's stop: end the lifecycle, or (nothing runs) just disarm the task's triggers.

    Either way the task is ``stopped`` afterwards, so no trigger starts it until the
    user starts it again (docs/triggers.md rule 1).
    """
    return "stop" if active else "disarm"


def resets_restart_budget(action: str) -> bool:
    """Whether a command clears the restart counter and window (a user's start/restart)."""
    return action in ("start", "restart")


# --------------------------------------------------------------------------- lifetime

EngineMode = Literal["cockpit", "detached", "headless", "exit_when_done"]


def engine_done(mode: EngineMode, *, any_active: bool, can_be_started: bool) -> bool:
    """Whether the engine ends on its own (the lifetime table of docs/lifecycle.md).

    The cockpit and a detached engine (``up -d``) stay until they are told to stop;
    ``up --no-tui`` ends when nothing runs and no observer can start a task again;
    ``--exit-when-done`` (and ``devster run``) end when nothing runs.

    Args:
        mode: How the engine runs.
        any_active: Whether any task's lifecycle is active (running, waiting, backoff).
        can_be_started: Whether an armed file, interval or log observer, or a manual gate,
            can still start a task.
    """
    if mode in ("cockpit", "detached"):
        return False
    if any_active:
        return False
    return mode == "exit_when_done" or not can_be_started


# --------------------------------------------------------------------------- dependencies

ConditionState = Literal["met", "wait", "impossible"]

_LIVE = frozenset({Status.RUNNING, Status.HEALTHY, Status.UNHEALTHY})
_ENDED = frozenset({Status.SUCCEEDED, Status.EXITED, Status.STOPPED})
_ENDED_FOR_GOOD = frozenset({Status.FAILED, Status.BLOCKED, Status.STOPPED})


def condition_state(dep: TaskState | None, condition: str) -> tuple[ConditionState, str]:
    """Whether a dependency meets ``condition`` now, may still meet it, or never will.

    ``completed`` is met by any end of a run, a user's stop included (process-compose's
    ``process_completed``); ``succeeded`` only by a successful end.  See the dependency
    table of docs/lifecycle.md.

    Args:
        dep: The dependency's state (None when it is not defined).
        condition: ``started``, ``healthy``, ``log_ready``, ``completed`` or ``succeeded``.

    Returns:
        ``(state, why)``; ``why`` explains an ``impossible`` verdict (``failed: exit 1``).
    """
    if dep is None:
        return "impossible", "is not defined"
    status = dep.status
    last = dep.last_exit.summary() if dep.last_exit is not None else ""
    is_job = dep.kind == "job"
    if condition == "started":
        if status in _LIVE or (is_job and status in _ENDED):
            return "met", ""
    elif condition == "healthy":
        if status is Status.HEALTHY:
            return "met", ""
    elif condition == "log_ready":
        if dep.log_ready and status in _LIVE:
            return "met", ""
    elif condition == "completed":
        if status in _ENDED:
            return "met", ""
        if status is Status.FAILED and dep.last_exit is not None:
            return "met", ""
    elif condition == "succeeded":
        if status is Status.SUCCEEDED:
            return "met", ""
        if status is Status.EXITED:
            return "impossible", f"exited without success ({last})" if last else "exited"
    if status in _ENDED_FOR_GOOD:
        detail = f": {dep.reason}" if dep.reason else ""
        return "impossible", f"{status.value}{detail}"
    if status is Status.EXITED and condition in ("started", "healthy", "log_ready"):
        return "impossible", f"exited ({last})" if last else "exited"
    return "wait", ""


DependencyEvent = Literal["started", "succeeded", "failed"]
"""What a dependency did: a run started, a job's run succeeded, a run failed."""
DependentAction = Literal["restart", "stop", "none"]


def on_dependency_event(
    *,
    event: DependencyEvent,
    dependency_kind: str,
    run: int,
    seen_run: int,
    on_restart: Rule | None,
    on_failure: Rule,
    dependent_live: bool,
) -> DependentAction:
    """What a dependency's event does to one dependent.

    A dependent reacts to a restart only when the dependency really ran again: a run
    newer than the one the dependent's current run started beside (``seen_run``).  So a
    server that started while its migration job ran is not restarted when that same run
    of the job ends.  A service's new run counts when it starts; a job's when it succeeds
    (a failed rebuild leaves the dependents on the previous build).

    Args:
        event: What the dependency did.
        dependency_kind: ``job`` or ``service``.
        run: The dependency's run number of the event.
        seen_run: The dependency's run number when the dependent's current run started.
        on_restart: The edge's ``on_restart`` rule (None: by the dependency's kind).
        on_failure: The edge's ``on_failure`` rule.
        dependent_live: Whether the dependent has a process.

    Returns:
        ``restart``, ``stop`` or ``none``.
    """
    if not dependent_live:
        return "none"
    if event == "failed":
        return "none" if on_failure == "ignore" else on_failure
    if event == "started" and dependency_kind == "job":
        return "none"  # a job's new run counts once it has succeeded
    if event == "succeeded" and dependency_kind != "job":
        return "none"
    if run <= seen_run:
        return "none"
    rule = default_on_restart(on_restart, dependency_kind)
    return "none" if rule == "ignore" else rule


def dependency_timeout(configured: float | None, condition: str) -> float | None:
    """The effective wait limit: the configured one, else 5 min for service conditions."""
    if configured is not None:
        return configured
    if condition in ("completed", "succeeded"):
        return None
    return DEFAULT_DEPENDENCY_TIMEOUT


def started_enough(status: Status, has_health: bool, has_ready_log: bool, log_ready: bool) -> bool:
    """Whether a task has left "starting" for the stuck_starting alarm.

    With a health check it must be healthy, with a ``ready_log`` it must be log-ready,
    otherwise running is enough.
    """
    if has_health:
        return status is Status.HEALTHY
    if has_ready_log:
        return log_ready and status in _LIVE
    return status in _LIVE or status in (Status.SUCCEEDED, Status.EXITED)
