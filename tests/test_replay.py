"""``devster replay``: timeline, final state table, JSON, damaged logs (real CLI processes)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from devster_tui.state.clock import FakeClock
from devster_tui.state.eventlog import EventLog, read_events, replay
from devster_tui.state.events import T
from devster_tui.state.model import EngineState, TaskState
from devster_tui.state.selectors import (
    failed_tasks,
    live_tasks,
    state_to_dict,
    status_counts,
    task_to_dict,
    uptime,
)
from devster_tui.state.store import Store

ROOT = Path(__file__).resolve().parent.parent


def devster(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "devster_tui", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def record_session(directory: Path) -> Store:
    clock = FakeClock(mono=500.0)
    log = EventLog(directory)
    store = Store(clock=clock, eventlog=log)
    store.dispatch_raw(T.ENGINE_STARTED, project="shop", pid=4242, tasks=["db", "api"])
    store.dispatch_raw(T.TASK_DEFINED, "api", kind="service", depends_on={"db": "healthy"})
    store.dispatch(T.TASK_STARTING, "db", run=1, reason="start")
    clock.advance(0.25)
    store.dispatch(T.TASK_SPAWNED, "db", pid=100, pgid=100, run=1, argv_summary="postgres")
    clock.advance(1.5)
    store.dispatch_raw(T.TASK_HEALTH, "db", healthy=True, probe="health", detail="tcp 5432 open")
    store.dispatch(T.TASK_STARTING, "api", run=1, reason="start")
    store.dispatch_raw(T.TASK_SPAWNED, "api", pid=101, pgid=101, run=1)
    clock.advance(2.0)
    store.dispatch_raw(
        T.TASK_EXITED,
        "api",
        run=1,
        code=3,
        success=False,
        duration=2.0,
        last_lines=["Traceback", "boom"],
    )
    store.dispatch(T.TASK_BACKOFF, "api", delay=0.5, attempt=1)
    clock.advance(0.5)
    store.dispatch(T.TASK_STARTING, "api", run=2, reason="restart")
    store.dispatch_raw(T.TASK_SPAWNED, "api", pid=102, pgid=102, run=2)
    store.dispatch(T.ENGINE_STOPPING, reason="signal", force=False)
    store.dispatch(T.TASK_STOPPING, "api", reason="shutdown", signal="SIGTERM")
    store.dispatch_raw(T.TASK_EXITED, "api", run=2, code=None, signal="SIGTERM", stopped=True)
    store.dispatch(T.TASK_STOPPED, "api", reason="shutdown")
    store.dispatch(T.ENGINE_STOPPED, exit_code=1)
    log.close()
    return store


def test_replay_prints_timeline_and_final_state_table(tmp_path: Path) -> None:
    record_session(tmp_path / "events")
    result = devster("replay", str(tmp_path / "events"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout.splitlines()
    spawned = next(line for line in out if " task.spawned " in line and "pid=100" in line)
    assert spawned.split()[:4] == ["+0.250s", "4", "task.spawned", "db"]
    assert any("task.exited" in line and "code=3" in line for line in out)
    header = next(i for i, line in enumerate(out) if line.startswith("TASK "))
    table = out[header:]
    assert table[0].split() == ["TASK", "STATUS", "RUNS", "RESTARTS", "LAST", "EXIT", "REASON"]
    assert table[1].split() == ["db", "healthy", "1", "0", "-"]
    assert table[2].split() == ["api", "stopped", "2", "1", "signal", "SIGTERM", "shutdown"]
    assert any("engine exit code 1" in line for line in out)


def test_replay_of_torn_log_exits_zero_with_a_warning(tmp_path: Path) -> None:
    store = record_session(tmp_path)
    (segment,) = tmp_path.glob("events-*.jsonl")
    segment.write_bytes(segment.read_bytes()[:-9])  # kill -9 in the middle of the last write
    result = devster("replay", str(segment))
    assert result.returncode == 0
    assert "warning" in result.stderr and "torn last record" in result.stderr
    assert "engine still running at the end of the log" in result.stdout
    events, _ = read_events(segment)
    assert len(events) == store.seq - 1


def test_replay_json_is_the_reducer_state(tmp_path: Path) -> None:
    store = record_session(tmp_path / ".devster" / "events")
    result = devster("replay", "--json", str(tmp_path / ".devster"))  # the state dir works too
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == state_to_dict(store.state)
    events, warnings = read_events(tmp_path / ".devster" / "events")
    assert warnings == [] and replay(events) == store.state


def test_replay_of_missing_log_fails_with_a_message(tmp_path: Path) -> None:
    result = devster("replay", str(tmp_path / "nope"))
    assert result.returncode == 1
    assert "no such file or directory" in result.stderr


def test_replay_timeline_restarts_offsets_for_each_engine_run(tmp_path: Path) -> None:
    record_session(tmp_path)
    second = record_session(tmp_path)  # a second engine run: a second segment
    result = devster("replay", str(tmp_path))
    assert result.returncode == 0, result.stderr
    headers = [line for line in result.stdout.splitlines() if line.startswith("-- ")]
    assert len(headers) == 2
    starts = [line for line in result.stdout.splitlines() if "engine.started" in line]
    assert [line.split()[0] for line in starts] == ["+0.000s", "+0.000s"]
    assert json.loads(devster("replay", "--json", str(tmp_path)).stdout) == state_to_dict(
        second.state
    )


def test_replay_command_imports_no_heavy_packages() -> None:
    code = (
        "import sys, devster_tui.cli as c; c.build_parser(); import devster_tui.commands.replay;"
        "heavy = [m for m in ('pydantic', 'textual', 'docker', 'asyncssh') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_state_to_dict_covers_every_field() -> None:
    task_keys = set(task_to_dict(TaskState(name="x")))
    assert task_keys == {f.name for f in dataclasses.fields(TaskState)}
    state_keys = set(state_to_dict(EngineState()))
    assert state_keys == {f.name for f in dataclasses.fields(EngineState)}


def test_selectors_derive_live_failed_counts_and_uptime(tmp_path: Path) -> None:
    store = record_session(tmp_path)
    store.dispatch_raw(T.TASK_BLOCKED, "db", reason="x")
    state = store.state
    assert [t.name for t in failed_tasks(state)] == ["db"]
    assert live_tasks(state) == []
    assert sum(status_counts(state).values()) == 2
    assert uptime(state.tasks["api"], 1e9) is None
    running = Store(clock=FakeClock(mono=10.0))
    running.dispatch_raw(T.TASK_SPAWNED, "a", pid=1)
    assert uptime(running.state.tasks["a"], 12.5) == 2.5
