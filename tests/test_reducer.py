"""Pure unit tests of the reducer: one test per event type, identity and totality."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devster_tui.state.events import Event, T
from devster_tui.state.model import EngineState, Status, TaskState
from devster_tui.state.reducer import MAX_EXITS, MAX_WARNINGS, reduce

_seq = iter(range(1, 10**9))


def ev(type: str, task: str | None = None, **data: Any) -> Event:
    """An event as the store would stamp it (increasing seq and times)."""
    seq = next(_seq)
    return Event(
        seq=seq,
        mono=100.0 + seq,
        wall=1_700_000_000.0 + seq,
        type=type,
        task=task,
        data=MappingProxyType(data),
    )


def fold(*events: Event, state: EngineState | None = None) -> EngineState:
    result = state if state is not None else EngineState()
    for event in events:
        result = reduce(result, event)
    return result


def started(*names: str) -> EngineState:
    return fold(ev(T.ENGINE_STARTED, project="shop", pid=42, tasks=list(names)))


def running(name: str = "api") -> EngineState:
    state = started(name)
    return fold(
        ev(T.TASK_STARTING, name, run=1, reason="start"),
        ev(T.TASK_SPAWNED, name, pid=1234, pgid=1234, run=1),
        state=state,
    )


def all_event_types() -> set[str]:
    return {value for key, value in vars(T).items() if key.isupper() and isinstance(value, str)}


CASES: dict[str, Callable[[], None]] = {}


def case(type: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def register(fn: Callable[[], None]) -> Callable[[], None]:
        CASES[type] = fn
        return fn

    return register


@case(T.ENGINE_STARTED)
def engine_started_resets_state_and_keeps_task_order() -> None:
    old = fold(ev(T.WARNING, message="old"), state=running("x"))
    state = fold(ev(T.ENGINE_STARTED, project="shop", pid=7, tasks=["b", "a"]), state=old)
    assert state.running and state.project == "shop" and state.pid == 7
    assert list(state.tasks) == ["b", "a"]
    assert state.warnings == ()
    assert state.tasks["b"].status is Status.DEFINED


@case(T.ENGINE_STOPPING)
def engine_stopping_sets_stopping() -> None:
    state = fold(ev(T.ENGINE_STOPPING, reason="signal", force=False), state=started("a"))
    assert state.stopping and state.running


@case(T.ENGINE_STOPPED)
def engine_stopped_records_exit_code() -> None:
    state = fold(ev(T.ENGINE_STOPPING, reason="request"), ev(T.ENGINE_STOPPED, exit_code=3))
    assert not state.running and not state.stopping and state.exit_code == 3


@case(T.TASK_DEFINED)
def task_defined_sets_definition_without_touching_runtime() -> None:
    state = fold(
        ev(
            T.TASK_DEFINED,
            "api",
            kind="job",
            depends_on={"db": "healthy"},
            triggers=["src"],
            mode="observe",
            has_health=True,
            ports={"http": 8080},
            host="web-1",
            autostart=False,
            restart_policy="on-failure",
            stdin=["db.stdout"],
            environment="production",
        ),
        state=running("api"),
    )
    task = state.tasks["api"]
    assert task.kind == "job" and task.mode == "observe" and task.has_health
    assert dict(task.depends_on) == {"db": "healthy"} and task.triggers == ("src",)
    assert dict(task.ports) == {"http": 8080} and task.host == "web-1"
    assert not task.autostart and task.restart_policy == "on-failure"
    assert task.stdin_from == ("db.stdout",) and task.environment == "production"
    assert task.status is Status.RUNNING and task.pid == 1234


@case(T.TASK_WAITING)
def task_waiting_shows_reason() -> None:
    state = fold(ev(T.TASK_WAITING, "api", reason="waiting for db", on=["db"]))
    assert state.tasks["api"].status is Status.WAITING
    assert state.tasks["api"].reason == "waiting for db"


@case(T.TASK_BLOCKED)
def task_blocked_shows_reason() -> None:
    state = fold(ev(T.TASK_BLOCKED, "api", reason="db failed"), state=started("api"))
    assert state.tasks["api"].status is Status.BLOCKED
    assert state.tasks["api"].reason == "db failed"


@case(T.TASK_STARTING)
def task_starting_counts_runs_and_only_restarts_as_restarts() -> None:
    state = running("api")
    assert state.tasks["api"].run == 1 and state.tasks["api"].restarts == 0
    state = fold(
        ev(T.TASK_EXITED, "api", run=1, code=1, success=False, duration=1.0),
        ev(T.TASK_STARTING, "api", run=2, reason="restart"),
        state=state,
    )
    task = state.tasks["api"]
    assert task.status is Status.STARTING and task.run == 2 and task.restarts == 1
    state = fold(ev(T.TASK_STOPPED, "api", reason="user"), state=state)
    state = fold(ev(T.TASK_STARTING, "api", run=3, reason="start"), state=state)
    assert state.tasks["api"].restarts == 1 and state.tasks["api"].run == 3


@case(T.TASK_SPAWNED)
def task_spawned_records_pid_and_start_time() -> None:
    spawn = ev(T.TASK_SPAWNED, "api", pid=99, pgid=99, run=1)
    state = fold(spawn, state=started("api"))
    task = state.tasks["api"]
    assert task.status is Status.RUNNING and task.pid == 99
    assert task.started_mono == spawn.mono and task.started_wall == spawn.wall


@case(T.TASK_SPAWN_FAILED)
def task_spawn_failed_fails_with_error() -> None:
    state = fold(ev(T.TASK_SPAWN_FAILED, "api", error="not found: foo", errno=2))
    assert state.tasks["api"].status is Status.FAILED
    assert state.tasks["api"].reason == "not found: foo"


@case(T.TASK_LOG_READY)
def task_log_ready_sets_flag_until_next_start() -> None:
    state = fold(ev(T.TASK_LOG_READY, "api", line="ready"), state=running())
    assert state.tasks["api"].log_ready
    state = fold(ev(T.TASK_STARTING, "api", run=2, reason="restart"), state=state)
    assert not state.tasks["api"].log_ready


@case(T.TASK_HEALTH)
def task_health_moves_between_healthy_and_unhealthy() -> None:
    state = fold(
        ev(T.TASK_HEALTH, "api", healthy=True, probe="health", detail="200"), state=running()
    )
    assert state.tasks["api"].status is Status.HEALTHY and state.tasks["api"].healthy
    state = fold(ev(T.TASK_HEALTH, "api", healthy=False, probe="health", detail="503"), state=state)
    assert state.tasks["api"].status is Status.UNHEALTHY
    assert state.tasks["api"].health_detail == "503"
    liveness = fold(ev(T.TASK_HEALTH, "api", healthy=True, probe="liveness"), state=state)
    assert liveness.tasks["api"].status is Status.UNHEALTHY


@case(T.TASK_STOPPING)
def task_stopping_keeps_stopping_through_exit() -> None:
    state = fold(ev(T.TASK_STOPPING, "api", reason="user", signal="SIGTERM"), state=running())
    assert state.tasks["api"].status is Status.STOPPING
    state = fold(ev(T.TASK_EXITED, "api", run=1, signal="SIGTERM", stopped=True), state=state)
    assert state.tasks["api"].status is Status.STOPPING
    assert state.tasks["api"].pid is None


@case(T.TASK_EXITED)
def task_exited_records_exit_and_bounded_history() -> None:
    state = running()
    for run in range(1, MAX_EXITS + 5):
        state = fold(
            ev(
                T.TASK_EXITED,
                "api",
                run=run,
                code=3,
                success=False,
                duration=2.5,
                last_lines=["boom"],
            ),
            state=state,
        )
    task = state.tasks["api"]
    assert task.status is Status.EXITED and task.pid is None
    assert task.last_exit is not None and task.last_exit.summary() == "exit 3"
    assert task.last_exit.duration == 2.5 and task.last_lines == ("boom",)
    assert len(task.exits) == MAX_EXITS and task.exits[-1].run == MAX_EXITS + 4
    killed = fold(ev(T.TASK_EXITED, "api", run=9, code=None, signal="SIGKILL"), state=state)
    assert killed.tasks["api"].last_exit is not None
    assert killed.tasks["api"].last_exit.summary() == "signal SIGKILL"
    assert not killed.tasks["api"].last_exit.success


@case(T.TASK_BACKOFF)
def task_backoff_shows_delay() -> None:
    state = fold(ev(T.TASK_BACKOFF, "api", delay=0.5, attempt=2), state=running())
    task = state.tasks["api"]
    assert task.status is Status.BACKOFF and task.backoff_delay == 0.5
    assert "attempt 2" in task.reason
    state = fold(ev(T.TASK_STARTING, "api", run=2, reason="restart"), state=state)
    assert state.tasks["api"].backoff_delay is None


@case(T.TASK_FAILED)
def task_failed_keeps_reason_and_last_lines() -> None:
    state = fold(
        ev(
            T.TASK_FAILED,
            "api",
            reason="5 restarts in 60s",
            last_exit="exit 1",
            last_lines=["a", "b"],
        ),
        state=running(),
    )
    task = state.tasks["api"]
    assert task.status is Status.FAILED and task.reason == "5 restarts in 60s"
    assert task.last_lines == ("a", "b")


@case(T.TASK_SUCCEEDED)
def task_succeeded_is_terminal_success() -> None:
    state = fold(ev(T.TASK_SUCCEEDED, "build", run=1, duration=1.0), state=running("build"))
    assert state.tasks["build"].status is Status.SUCCEEDED


@case(T.TASK_STOPPED)
def task_stopped_clears_pending_and_backoff() -> None:
    state = fold(
        ev(T.TASK_BACKOFF, "api", delay=1.0, attempt=1),
        ev(T.TASK_PENDING, "api", trigger="src"),
        ev(T.TASK_STOPPED, "api", reason="user"),
        state=running(),
    )
    task = state.tasks["api"]
    assert task.status is Status.STOPPED and task.reason == "user"
    assert not task.pending and task.backoff_delay is None


@case(T.TASK_ALARM)
def task_alarm_raises_and_clears() -> None:
    state = fold(ev(T.TASK_ALARM, "api", alarm="crash_loop", active=True, detail="x"))
    assert state.tasks["api"].alarms == frozenset({"crash_loop"})
    state = fold(ev(T.TASK_ALARM, "api", alarm="crash_loop", active=False), state=state)
    assert state.tasks["api"].alarms == frozenset()


@case(T.TASK_PENDING)
def task_pending_marks_idle_task_pending_and_running_task_queued() -> None:
    idle = fold(
        ev(T.TASK_PENDING, "tests", trigger="src", detail="3 files changed"), state=started("tests")
    )
    assert idle.tasks["tests"].status is Status.PENDING and idle.tasks["tests"].pending
    busy = fold(ev(T.TASK_PENDING, "api", trigger="src"), state=running())
    assert busy.tasks["api"].status is Status.RUNNING and busy.tasks["api"].pending


@case(T.TASK_GATE)
def task_gate_waits_then_opens() -> None:
    state = fold(ev(T.TASK_GATE, "it", observer="go", prompt="Run?", waiting=True))
    assert state.tasks["it"].status is Status.GATED and state.tasks["it"].gate_prompt == "Run?"
    state = fold(ev(T.TASK_GATE, "it", observer="go", waiting=False), state=state)
    assert state.tasks["it"].gate_prompt is None
    assert state.tasks["it"].status is Status.WAITING


@case(T.TASK_TRIGGERED)
def task_triggered_clears_pending() -> None:
    state = fold(
        ev(T.TASK_PENDING, "tests", trigger="src"),
        ev(T.TASK_TRIGGERED, "tests", trigger="user"),
    )
    assert not state.tasks["tests"].pending


@case(T.TASK_AUTORESTART)
def task_autorestart_toggles() -> None:
    state = fold(ev(T.TASK_AUTORESTART, "api", enabled=False), state=running())
    assert not state.tasks["api"].autorestart


@case(T.TASK_WATCH)
def task_watch_toggles() -> None:
    state = fold(ev(T.TASK_WATCH, "api", enabled=False), state=running())
    assert not state.tasks["api"].watching


@case(T.TASK_OUTPUT_DROPPED)
def task_output_dropped_counts_on_the_consumer() -> None:
    state = started("api", "errors")
    state = fold(
        ev(T.TASK_OUTPUT_DROPPED, "api", consumer="errors", lines=5),
        ev(T.TASK_OUTPUT_DROPPED, "api", consumer="errors", lines=2),
        state=state,
    )
    assert state.tasks["errors"].dropped_lines == 7
    assert state.tasks["api"].dropped_lines == 0


@case(T.TASK_LINK)
def task_link_lost_shows_disconnected_and_comes_back_running() -> None:
    state = fold(ev(T.TASK_LINK, "api", state="disconnected", detail="link lost"), state=running())
    assert state.tasks["api"].status is Status.WAITING
    assert state.tasks["api"].reason == "disconnected: link lost"
    state = fold(ev(T.TASK_LINK, "api", state="connected", detail=""), state=state)
    assert state.tasks["api"].status is Status.RUNNING


@case(T.COMMAND)
def command_is_recorded_without_changing_state() -> None:
    state = running()
    assert fold(ev(T.COMMAND, "api", action="restart", by="tui"), state=state) is state


@case(T.WARNING)
def warning_is_kept_bounded() -> None:
    state = EngineState()
    for i in range(MAX_WARNINGS + 3):
        state = fold(ev(T.WARNING, message=f"w{i}"), state=state)
    assert len(state.warnings) == MAX_WARNINGS and state.warnings[-1] == f"w{MAX_WARNINGS + 2}"


@case(T.ORPHAN_KILLED)
def orphan_killed_becomes_a_warning() -> None:
    state = fold(ev(T.ORPHAN_KILLED, pid=555, pgid=555, task="api"))
    assert state.warnings and "555" in state.warnings[-1] and "api" in state.warnings[-1]


@case(T.TASK_KILLED)
def task_killed_warns_about_an_escapee_and_records_the_rest() -> None:
    state = running("api")
    escaped = fold(
        ev(T.TASK_KILLED, "api", pid=777, name="sleep", signal="SIGTERM", why="escaped"),
        state=state,
    )
    assert escaped.warnings and "777 (sleep)" in escaped.warnings[-1]
    assert "api" in escaped.warnings[-1]
    assert escaped.tasks["api"] == state.tasks["api"]
    timeout = ev(T.TASK_KILLED, "api", pid=778, signal="SIGKILL", why="stop timeout")
    assert fold(timeout, state=state) is state
    # A recorded payload of any shape never breaks the fold.
    odd = ev(T.TASK_KILLED, None, pid="x", why=["escaped"])
    assert fold(odd, state=state) is state
    assert fold(ev(T.TASK_KILLED, None, why="escaped"), state=state).warnings


def test_every_event_type_has_a_reducer_test() -> None:
    assert set(CASES) == all_event_types()


@pytest.mark.parametrize("type", sorted(CASES))
def test_reducer_handles_event_type(type: str) -> None:
    CASES[type]()


def test_unknown_event_type_returns_the_same_state_object() -> None:
    state = running()
    assert reduce(state, ev("from.the.future", "api", x=1)) is state


def test_repeated_toggle_returns_the_same_state_object() -> None:
    state = fold(ev(T.TASK_AUTORESTART, "api", enabled=False), state=running())
    assert reduce(state, ev(T.TASK_AUTORESTART, "api", enabled=False)) is state


def test_task_event_without_task_is_ignored() -> None:
    state = running()
    assert reduce(state, ev(T.TASK_SPAWNED, None, pid=1)) is state


def test_changed_task_records_event_seq_and_state_time() -> None:
    state = running()
    event = ev(T.TASK_WAITING, "api", reason="x")
    after = reduce(state, event)
    assert after.tasks["api"].last_event_seq == event.seq
    assert (after.seq, after.mono, after.wall) == (event.seq, event.mono, event.wall)


def test_unchanged_tasks_are_shared_between_states() -> None:
    state = fold(ev(T.TASK_SPAWNED, "db", pid=5), state=running("api"))
    after = reduce(state, ev(T.TASK_WAITING, "api", reason="x"))
    assert after.tasks["db"] is state.tasks["db"]


def test_reducer_does_not_mutate_its_input() -> None:
    state = running()
    before = dict(state.tasks)
    reduce(state, ev(T.TASK_EXITED, "api", run=1, code=0))
    assert dict(state.tasks) == before and state.tasks["api"].status is Status.RUNNING


def test_task_state_defaults_match_a_fresh_task() -> None:
    state = fold(ev(T.TASK_LOG_READY, "new"))
    assert state.tasks["new"] == TaskState(
        name="new", log_ready=True, last_event_seq=state.tasks["new"].last_event_seq
    )


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    type=st.sampled_from(sorted(all_event_types())),
    task=st.none() | st.sampled_from(["api", "db"]),
    data=st.dictionaries(
        st.sampled_from(
            [
                "run",
                "code",
                "signal",
                "pid",
                "delay",
                "tasks",
                "enabled",
                "healthy",
                "probe",
                "alarm",
                "active",
                "depends_on",
                "ports",
                "lines",
                "consumer",
                "message",
                "last_lines",
                "reason",
                "waiting",
                "prompt",
                "exit_code",
                "duration",
                "triggers",
            ]
        ),
        _json,
        max_size=6,
    ),
)
def test_reducer_never_raises_on_malformed_recorded_payloads(
    type: str, task: str | None, data: dict[str, Any]
) -> None:
    event = Event(seq=2, mono=1.0, wall=2.0, type=type, task=task, data=MappingProxyType(data))
    base = running("api")
    assert reduce(base, event) == reduce(base, event)
