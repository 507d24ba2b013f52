"""``devster replay --tui``: stepping and scrubbing a recorded log in the cockpit (pilot tests)."""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest
from textual.pilot import Pilot

from devster_tui.state.clock import FakeClock
from devster_tui.state.commands import Command
from devster_tui.state.eventlog import EventLog, read_events, replay
from devster_tui.state.events import Event, T
from devster_tui.state.output import OutputStore
from devster_tui.state.reducer import reduce
from devster_tui.state.store import Store
from devster_tui.tui.replay import (
    REFUSAL,
    ReplayApp,
    ReplayController,
    ReplayStore,
    logs_beside,
    position_text,
    recorded_output,
    task_names,
)
from tests.helpers.components import require_binary
from tests.test_replay import record_session

SIZE = (120, 30)


def _events(directory: Path) -> list[Event]:
    events, warnings = read_events(directory)
    assert warnings == []
    return events


def _app(events: Sequence[Event], logs: Path | None = None, **kwargs: object) -> ReplayApp:
    store = ReplayStore(events, every=int(kwargs.pop("every", 4)))  # type: ignore[call-overload]
    store.seek(store.total)
    output = recorded_output(task_names(events), logs)
    return ReplayApp(store, output, theme_dirs=[], **kwargs)  # type: ignore[arg-type]


def _run(app: ReplayApp, body: Callable[[Pilot[int], ReplayApp], Awaitable[None]]) -> None:
    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await body(pilot, app)

    asyncio.run(asyncio.wait_for(main(), 60))


async def _until(pilot: Pilot[int], cond: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 10
    while not cond():
        assert time.monotonic() < deadline, f"timed out: {what}"
        await pilot.pause(0.01)


def _row(app: ReplayApp, name: str) -> str:
    """The task table row of ``name`` as shown on screen."""
    tasks = app.tasks
    if name not in tasks.names:
        return ""
    y = tasks.names.index(name) - tasks.scroll_offset.y
    return "".join(segment.text for segment in tasks.render_line(y))


def _shown_status(app: ReplayApp, name: str) -> str | None:
    words = _row(app, name).split()
    return words[2] if len(words) > 2 else None  # glyph, name, status


def _shows(app: ReplayApp, name: str, status: str | None) -> Callable[[], bool]:
    return lambda: _shown_status(app, name) == status


def test_each_step_shows_the_task_status_the_reducer_gives_at_that_event(
    tmp_path: Path,
) -> None:
    record_session(tmp_path / "events")
    events = _events(tmp_path / "events")

    async def body(pilot: Pilot[int], app: ReplayApp) -> None:
        await pilot.press("B")
        assert app.replay.position == 0
        seen: list[str] = []
        for position in range(1, len(events) + 1):
            await pilot.press("full_stop")
            assert app.replay.position == position
            expected = replay(events[:position]).tasks.get("api")
            want = expected.status.value if expected is not None else None
            await _until(pilot, _shows(app, "api", want), f"api {want}")
            if want is not None:
                seen.append(want)
        assert {"defined", "starting", "running", "exited", "backoff", "stopped"} <= set(seen)
        for position in range(len(events) - 1, 0, -1):
            await pilot.press("comma")
            expected = replay(events[:position]).tasks.get("api")
            want = expected.status.value if expected is not None else None
            await _until(pilot, _shows(app, "api", want), f"back: {want}")
            assert app.bridge.state == replay(events[:position])

    _run(_app(events), body)


def _synthetic(count: int, tasks: int = 8) -> list[Event]:
    """A long, busy log: tasks crash and restart over and over, some stop for good."""
    clock = FakeClock(mono=100.0, wall=1_700_000_000.0)
    store = Store(clock=clock, history=count + 16)
    names = [f"svc{i}" for i in range(tasks)]
    store.dispatch_raw(T.ENGINE_STARTED, project="busy", pid=1, tasks=names)
    for name in names:
        store.dispatch_raw(T.TASK_DEFINED, name, kind="service", depends_on={})
    runs = dict.fromkeys(names, 0)
    rng = random.Random(7)
    while store.seq < count:
        name = rng.choice(names)
        runs[name] += 1
        run = runs[name]
        clock.advance(rng.random() * 0.2)
        store.dispatch(T.TASK_STARTING, name, run=run, reason="restart")
        store.dispatch_raw(
            T.TASK_SPAWNED, name, pid=1000 + store.seq, pgid=1000 + store.seq, run=run
        )
        code = rng.choice([0, 1, 2])
        store.dispatch_raw(
            T.TASK_EXITED, name, run=run, code=code, success=code == 0, duration=0.1, stopped=False
        )
        if rng.random() < 0.1:
            store.dispatch_raw(T.TASK_FAILED, name, reason="crash loop", last_exit=f"exit {code}")
        else:
            store.dispatch(T.TASK_BACKOFF, name, delay=0.5, attempt=run)
    return store.events_since(0)[:count]


def test_scrubbing_to_the_end_shows_the_same_final_state_as_replay() -> None:
    events = _synthetic(3000)
    final = replay(events)

    async def body(pilot: Pilot[int], app: ReplayApp) -> None:
        await pilot.press("B")
        await _until(pilot, lambda: app.bridge.state.tasks == {}, "empty state at the start")
        await pilot.press("greater_than_sign", "greater_than_sign", "right_square_bracket")
        assert 0 < app.replay.position < len(events)
        await pilot.press("E")
        assert app.replay.position == len(events)
        await _until(pilot, lambda: app.bridge.state is app.replay.state, "pump took the state")
        assert app.bridge.state == final
        for name, task in final.tasks.items():
            await _until(pilot, _shows(app, name, task.status.value), name)
        assert f"event {len(events)}/{len(events)}" in str(app.replay_bar.render())

    _run(_app(events, every=100, jump=500, seconds=30.0), body)


def test_checkpointed_seeks_anywhere_equal_folding_from_the_first_event() -> None:
    events = _synthetic(2500)
    store = ReplayStore(events, every=97)
    rng = random.Random(3)
    positions = [len(events), 0, 1, 96, 97, 98, *(rng.randrange(len(events)) for _ in range(40))]
    folded = [replay([])]
    for event in events:
        folded.append(reduce(folded[-1], event))
    for position in positions:
        assert store.seek(position) == folded[position], position
    store.seek(len(events))
    before = store.reductions
    store.seek(1234)
    assert store.reductions - before <= 97, "a seek folds at most one checkpoint interval"


def test_seconds_scrubber_moves_to_the_last_event_at_that_time(tmp_path: Path) -> None:
    record_session(tmp_path / "events")
    events = _events(tmp_path / "events")
    store = ReplayStore(events)
    offsets = [round(e.mono - events[0].mono, 6) for e in events]
    store.seek(0)
    store.scrub(1.0)  # +0.25 s is the last event within the first second
    assert store.position == max(i + 1 for i, o in enumerate(offsets) if o <= 1.0)
    assert position_text(store).count("+0.250s") == 1
    store.scrub(1.0)  # nothing between 1.25 s and 2.25 s but 1.75 s
    assert round(store.offset, 6) == 1.75
    store.scrub(-10.0)
    assert store.position == 0
    store.seek_time(3.75)
    assert round(store.offset, 6) == 3.75 and store.position == offsets.index(3.75) + 1 + (
        offsets.count(3.75) - 1
    )


def test_every_command_is_refused_with_the_replay_reason(tmp_path: Path) -> None:
    record_session(tmp_path / "events")
    events = _events(tmp_path / "events")
    result = asyncio.run(ReplayController().execute(Command("shutdown")))
    assert not result.ok and result.message == REFUSAL

    async def body(pilot: Pilot[int], app: ReplayApp) -> None:
        await _until(pilot, lambda: app.tasks.selected is not None, "a task is selected")
        before = app.replay.state
        await pilot.press("r", "x", "s", "t", "R")
        await _until(
            pilot,
            lambda: sum(n.message == REFUSAL for n in app._notifications) >= 5,
            "five refusals",
        )
        assert app.replay.state is before

    _run(_app(events), body)


def test_log_pane_shows_the_recorded_log_files_beside_the_event_log(tmp_path: Path) -> None:
    state_dir = tmp_path / ".devster"
    record_session(state_dir / "events")
    output = OutputStore(state_dir / "logs", max_bytes=64, backups=5)  # rotates: .1 .. .N
    for i in range(20):
        output.append("api", "stdout", f"api line {i}\n".encode(), 1)
    output.append("api", "stderr", b"Traceback\nboom\n", 1)
    output.close()
    events = _events(state_dir / "events")
    assert logs_beside(state_dir / "events") == state_dir / "logs"

    async def body(pilot: Pilot[int], app: ReplayApp) -> None:
        app.tasks.select("api")
        await _until(pilot, lambda: app.log_pane.task_name == "api", "api in the log pane")
        await _until(pilot, lambda: "boom" in " ".join(app.log_pane.visible_text()), "stderr")
        text = app.log_pane.visible_text()
        api = [line for line in text if "api line" in line]
        assert api and api[-1].strip() == "api line 19"
        numbers = [int(re.sub(r"\D", "", line)) for line in api]
        assert numbers == sorted(numbers), "rotated files are read oldest first"
        app.tasks.select("db")
        await _until(
            pilot,
            lambda: any("no output recorded for db" in t for t in app.log_pane.visible_text()),
            "db has no files",
        )

    _run(_app(events, logs=logs_beside(state_dir / "events")), body)


def test_log_pane_says_no_output_was_recorded_without_a_logs_directory(tmp_path: Path) -> None:
    record_session(tmp_path / "events")
    events = _events(tmp_path / "events")
    assert logs_beside(tmp_path / "events") is None

    async def body(pilot: Pilot[int], app: ReplayApp) -> None:
        await _until(pilot, lambda: app.log_pane.task_name is not None, "a task shown")
        await _until(
            pilot,
            lambda: any("no output recorded" in t for t in app.log_pane.visible_text()),
            "the no-output line",
        )

    _run(_app(events), body)


@pytest.mark.slow
def test_replay_tui_command_opens_the_log_at_its_last_event(tmp_path: Path) -> None:
    require_binary("tmux")
    state_dir = tmp_path / ".devster"
    store = record_session(state_dir / "events")
    sock = str(tmp_path / "tmux.sock")
    command = f"{sys.executable} -m devster_tui replay --tui {state_dir}"

    def tmux(*args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", sock, *args], capture_output=True, text=True, timeout=20, check=False
        )
        return done.stdout

    tmux("new-session", "-d", "-s", "replay", "-x", "120", "-y", "30", command)
    try:
        deadline = time.monotonic() + 30
        total = store.seq
        while f"event {total}/{total}" not in tmux("capture-pane", "-p", "-t", "replay"):
            assert time.monotonic() < deadline, tmux("capture-pane", "-p", "-t", "replay")
            time.sleep(0.05)  # polling interval of a deadline loop
        tmux("send-keys", "-t", "replay", "B")
        while "before the first event" not in tmux("capture-pane", "-p", "-t", "replay"):
            assert time.monotonic() < deadline, tmux("capture-pane", "-p", "-t", "replay")
            time.sleep(0.05)
        tmux("send-keys", "-t", "replay", "q")
        while "replay" in tmux("list-sessions", "-F", "#{session_name}"):
            assert time.monotonic() < deadline, "devster replay --tui did not quit on q"
            time.sleep(0.05)
    finally:
        tmux("kill-server")


def test_event_log_written_by_an_event_log_round_trips_through_the_replay_store(
    tmp_path: Path,
) -> None:
    clock = FakeClock(mono=10.0)
    log = EventLog(tmp_path)
    store = Store(clock=clock, eventlog=log)
    store.dispatch_raw(T.ENGINE_STARTED, project="one", pid=1, tasks=["a"])
    store.dispatch_raw(T.TASK_DEFINED, "a", kind="job", depends_on={})
    log.close()
    clock.advance(100.0)
    log = EventLog(tmp_path)  # a second engine run, its own monotonic origin
    second = Store(clock=FakeClock(mono=5.0, wall=clock.wall() + 60), eventlog=log)
    second.dispatch_raw(T.ENGINE_STARTED, project="two", pid=2, tasks=["b"])
    log.close()
    replayed = ReplayStore(_events(tmp_path))
    assert replayed.offsets == sorted(replayed.offsets)
    assert replayed.offsets[-1] >= 60.0
    assert replayed.seek(replayed.total).project == "two"
