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
from typing import Literal

from devster_tui.config.schema import Backoff, RestartPolicy
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


# --------------------------------------------------------------------------- dependencies

ConditionState = Literal["met", "wait", "impossible"]

_LIVE = frozenset({Status.RUNNING, Status.HEALTHY, Status.UNHEALTHY})
_ENDED_FOR_GOOD = frozenset({Status.FAILED, Status.BLOCKED, Status.STOPPED})


def condition_state(dep: TaskState | None, condition: str) -> tuple[ConditionState, str]:
    """Whether a dependency meets ``condition`` now, may still meet it, or never will.

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
        if status in _LIVE or (is_job and status in (Status.SUCCEEDED, Status.EXITED)):
            return "met", ""
    elif condition == "healthy":
        if status is Status.HEALTHY:
            return "met", ""
    elif condition == "log_ready":
        if dep.log_ready and status in _LIVE:
            return "met", ""
    elif condition == "completed":
        if status in (Status.SUCCEEDED, Status.EXITED):
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
