"""Unit tests of the pure restart policy, dependency conditions and alarm rules."""

from __future__ import annotations

import random

from devster_tui.config.schema import Backoff, RestartPolicy
from devster_tui.engine.policy import (
    PolicyState,
    backoff_delay,
    condition_state,
    crash_looping,
    decide,
    dependency_timeout,
    started_enough,
)
from devster_tui.state.clock import FakeClock
from devster_tui.state.model import ExitInfo, Status, TaskState


def _policy(**kw: object) -> RestartPolicy:
    return RestartPolicy.model_validate(kw)


def test_policy_no_never_restarts_even_after_a_crash() -> None:
    decision, _ = decide(
        _policy(policy="no"),
        PolicyState(),
        now=1.0,
        ran_for=1.0,
        success=False,
        rng=random.Random(1),
    )
    assert decision.verdict == "exit"


def test_on_failure_restarts_a_crash_but_not_a_success() -> None:
    spec = _policy(policy="on-failure")
    crash, _ = decide(spec, PolicyState(), now=1, ran_for=1, success=False, rng=random.Random(1))
    clean, _ = decide(spec, PolicyState(), now=1, ran_for=1, success=True, rng=random.Random(1))
    assert crash.verdict == "restart"
    assert clean.verdict == "exit"


def test_always_restarts_a_successful_exit() -> None:
    decision, _ = decide(
        _policy(policy="always"),
        PolicyState(),
        now=1,
        ran_for=1,
        success=True,
        rng=random.Random(1),
    )
    assert decision.verdict == "restart"


def test_backoff_grows_by_factor_and_is_capped_at_max() -> None:
    spec = _policy(
        policy="always", backoff={"initial": "100ms", "factor": 2, "max": "1s", "jitter": 0}
    )
    clock = FakeClock()
    state = PolicyState()
    delays = []
    for _ in range(6):
        clock.advance(0.01)
        decision, state = decide(
            spec, state, now=clock.monotonic(), ran_for=0.01, success=False, rng=random.Random(0)
        )
        delays.append(round(decision.delay, 6))
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_backoff_resets_after_a_stable_run() -> None:
    spec = _policy(
        policy="always",
        stable_after="5s",
        backoff={"initial": "1s", "factor": 3, "max": "1m", "jitter": 0},
    )
    clock = FakeClock()
    state = PolicyState()
    for _ in range(3):
        clock.advance(1)
        _, state = decide(
            spec, state, now=clock.monotonic(), ran_for=1, success=False, rng=random.Random(0)
        )
    assert state.attempt == 3
    clock.advance(10)
    decision, state = decide(
        spec, state, now=clock.monotonic(), ran_for=10, success=False, rng=random.Random(0)
    )
    assert decision.delay == 1.0
    assert decision.attempt == 1


def test_jitter_stays_within_its_fraction_and_is_reproducible_with_a_seed() -> None:
    spec = Backoff(initial=10.0, factor=2.0, max=100.0, jitter=0.1)
    rng = random.Random(42)
    values = [backoff_delay(spec, 0, rng) for _ in range(200)]
    assert all(9.0 <= v <= 11.0 for v in values)
    assert len(set(values)) > 1
    again = random.Random(42)
    assert values[:5] == [backoff_delay(spec, 0, again) for _ in range(5)]


def test_jitter_never_pushes_the_delay_above_max() -> None:
    spec = Backoff(initial=10.0, factor=2.0, max=10.0, jitter=0.5)
    rng = random.Random(7)
    assert all(backoff_delay(spec, 3, rng) <= 10.0 for _ in range(100))


def test_max_restarts_within_window_gives_up_with_reason() -> None:
    spec = _policy(policy="always", max_restarts=2, window="10s", backoff={"jitter": 0})
    clock = FakeClock()
    state = PolicyState()
    verdicts = []
    for _ in range(3):
        clock.advance(1)
        decision, state = decide(
            spec, state, now=clock.monotonic(), ran_for=0.1, success=False, rng=random.Random(0)
        )
        verdicts.append(decision.verdict)
    assert verdicts == ["restart", "restart", "give_up"]
    assert "2 times within 10s" in decision.reason


def test_restarts_older_than_the_window_do_not_count_towards_max_restarts() -> None:
    spec = _policy(policy="always", max_restarts=2, window="10s", backoff={"jitter": 0})
    clock = FakeClock()
    state = PolicyState()
    for _ in range(2):
        clock.advance(1)
        _, state = decide(
            spec, state, now=clock.monotonic(), ran_for=0.1, success=False, rng=random.Random(0)
        )
    clock.advance(20)
    decision, _ = decide(
        spec, state, now=clock.monotonic(), ran_for=0.1, success=False, rng=random.Random(0)
    )
    assert decision.verdict == "restart"


def test_crash_loop_counts_only_restarts_inside_the_window() -> None:
    assert crash_looping([1.0, 2.0, 3.0], now=4.0, threshold=3, window=60)
    assert not crash_looping([1.0, 2.0, 3.0], now=62.5, threshold=3, window=60)


def _dep(status: Status, kind: str = "service", **kw: object) -> TaskState:
    return TaskState(name="dep", kind=kind, status=status, **kw)  # type: ignore[arg-type]


def test_healthy_condition_waits_while_running_and_is_met_when_healthy() -> None:
    assert condition_state(_dep(Status.RUNNING), "healthy")[0] == "wait"
    assert condition_state(_dep(Status.HEALTHY), "healthy")[0] == "met"


def test_failed_dependency_makes_every_condition_impossible_with_its_reason() -> None:
    dep = _dep(Status.FAILED, reason="not found: nosuchprog")
    for cond in ("started", "healthy", "log_ready", "succeeded"):
        state, why = condition_state(dep, cond)
        assert state == "impossible"
        assert "not found: nosuchprog" in why


def test_job_that_exited_without_success_blocks_succeeded_but_meets_completed() -> None:
    exit1 = ExitInfo(run=1, code=1, signal=None, success=False, wall=0.0, duration=0.1)
    dep = _dep(Status.EXITED, kind="job", last_exit=exit1)
    assert condition_state(dep, "succeeded") == ("impossible", "exited without success (exit 1)")
    assert condition_state(dep, "completed")[0] == "met"


def test_service_that_exited_can_no_longer_become_healthy() -> None:
    assert condition_state(_dep(Status.EXITED), "healthy")[0] == "impossible"


def test_log_ready_needs_a_live_process() -> None:
    assert condition_state(_dep(Status.RUNNING, log_ready=True), "log_ready")[0] == "met"
    assert condition_state(_dep(Status.BACKOFF, log_ready=True), "log_ready")[0] == "wait"


def test_default_dependency_timeout_is_five_minutes_for_services_and_none_for_jobs() -> None:
    assert dependency_timeout(None, "healthy") == 300.0
    assert dependency_timeout(None, "succeeded") is None
    assert dependency_timeout(2.0, "succeeded") == 2.0


def test_stuck_starting_requires_healthy_when_a_health_check_exists() -> None:
    assert not started_enough(Status.RUNNING, True, False, False)
    assert started_enough(Status.HEALTHY, True, False, False)
    assert started_enough(Status.RUNNING, False, False, False)
    assert not started_enough(Status.RUNNING, False, True, False)
