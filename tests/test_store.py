"""Store: stamping, gap-free sequence, subscribers, identity, history, event log wiring."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from devster_tui.state.clock import FakeClock, SystemClock
from devster_tui.state.eventlog import EventLog, read_events, replay
from devster_tui.state.events import Event, T
from devster_tui.state.model import EngineState, Status
from devster_tui.state.store import Store


def test_dispatch_stamps_gap_free_seq_and_clock_readings() -> None:
    clock = FakeClock(mono=5.0, wall=1000.0)
    store = Store(clock=clock)
    seqs = []
    for i in range(100):
        clock.advance(0.25)
        event = store.dispatch_raw(T.WARNING if i % 3 else T.COMMAND, None, message=str(i))
        seqs.append(event.seq)
        assert event.mono == clock.monotonic() and event.wall == clock.wall()
    assert seqs == list(range(1, 101))
    assert store.seq == 100


def test_events_that_change_nothing_keep_the_state_object() -> None:
    store = Store(clock=FakeClock())
    store.dispatch_raw(T.TASK_SPAWNED, "api", pid=1)
    before = store.state
    store.dispatch_raw(T.COMMAND, "api", action="restart", by="cli")
    store.dispatch_raw("unknown.type", "api")
    assert store.state is before
    assert store.seq == 3


def test_subscribers_see_each_event_with_the_state_it_produced_in_order() -> None:
    store = Store(clock=FakeClock())
    seen: list[tuple[int, Status]] = []

    def watch(event: Event, state: EngineState) -> None:
        seen.append((event.seq, state.tasks["api"].status))

    unsubscribe = store.subscribe(watch)
    store.dispatch_raw(T.TASK_STARTING, "api", run=1)
    store.dispatch_raw(T.TASK_SPAWNED, "api", pid=3, run=1)
    unsubscribe()
    unsubscribe()  # a second call is harmless
    store.dispatch(T.TASK_STOPPED, "api", reason="user")
    assert seen == [(1, Status.STARTING), (2, Status.RUNNING)]


def test_failing_subscriber_is_logged_and_does_not_break_dispatch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store(clock=FakeClock())
    seen: list[int] = []

    def broken(event: Event, state: EngineState) -> None:
        raise RuntimeError("subscriber bug")

    store.subscribe(broken)
    store.subscribe(lambda event, state: seen.append(event.seq))
    with caplog.at_level(logging.ERROR, logger="devster_tui.state.store"):
        event = store.dispatch(T.WARNING, message="x")
    assert event.seq == 1 and seen == [1]
    assert store.state.warnings == ("x",)
    assert any("subscriber bug" in (r.exc_text or "") for r in caplog.records)


def test_subscriber_unsubscribing_during_dispatch_does_not_skip_others() -> None:
    store = Store(clock=FakeClock())
    seen: list[str] = []

    def first(event: Event, state: EngineState) -> None:
        seen.append("a")
        unsubscribe_first()

    unsubscribe_first = store.subscribe(first)
    store.subscribe(lambda event, state: seen.append("b"))
    store.dispatch(T.WARNING, message="x")
    store.dispatch(T.WARNING, message="y")
    assert seen == ["a", "b", "b"]


def test_events_since_returns_the_tail_and_is_bounded() -> None:
    store = Store(clock=FakeClock(), history=10)
    for i in range(25):
        store.dispatch(T.WARNING, message=str(i))
    assert [e.seq for e in store.events_since(20)] == [21, 22, 23, 24, 25]
    assert store.events_since(25) == []
    assert [e.seq for e in store.events_since(0)] == list(range(16, 26))


def test_apply_keeps_foreign_seq_and_rebuilds_same_state() -> None:
    engine = Store(clock=FakeClock())
    engine.dispatch_raw(T.ENGINE_STARTED, project="p", tasks=["api"])
    engine.dispatch_raw(T.TASK_STARTING, "api", run=1)
    engine.dispatch_raw(T.TASK_SPAWNED, "api", pid=9, run=1)
    engine.dispatch_raw(T.TASK_HEALTH, "api", healthy=True, probe="health")
    client = Store(clock=FakeClock(mono=0.0, wall=0.0))
    for event in engine.events_since(1):  # attached late: missed seq 1
        client.apply(event)
    assert client.seq == engine.seq == 4
    assert [e.seq for e in client.events_since(2)] == [3, 4]
    catch_up = Store()
    for event in engine.events_since(0):
        catch_up.apply(event)
    assert catch_up.state == engine.state


def test_initial_state_continues_its_sequence() -> None:
    store = Store(clock=FakeClock(), initial=EngineState(seq=41))
    assert store.dispatch(T.WARNING, message="x").seq == 42


def test_dispatched_events_are_recorded_and_replay_to_the_same_state(tmp_path: Path) -> None:
    eventlog = EventLog(tmp_path / "events")
    store = Store(clock=SystemClock(), eventlog=eventlog)
    store.dispatch_raw(T.ENGINE_STARTED, project="p", pid=1, tasks=["a", "b"])
    store.dispatch(T.TASK_STARTING, "a", run=1, reason="start")
    store.dispatch_raw(T.TASK_SPAWNED, "a", pid=2, pgid=2, run=1)
    store.dispatch_raw(T.TASK_EXITED, "a", run=1, code=0, success=True, duration=0.5)
    store.dispatch(T.ENGINE_STOPPED, exit_code=0)
    eventlog.close()
    events, warnings = read_events(tmp_path / "events")
    assert warnings == []
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert replay(events) == store.state


def test_event_log_failure_is_logged_and_dispatch_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    eventlog = EventLog(tmp_path)
    eventlog.close()  # every append now fails
    store = Store(clock=FakeClock(), eventlog=eventlog)
    with caplog.at_level(logging.ERROR, logger="devster_tui.state.store"):
        store.dispatch(T.WARNING, message="a")
        store.dispatch(T.WARNING, message="b")
    assert store.state.warnings == ("a", "b")
    assert len([r for r in caplog.records if "event log" in r.getMessage()]) == 1


def test_fake_clock_refuses_to_go_backwards() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError):
        clock.advance(-1)
