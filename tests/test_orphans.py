"""No task outlives devster: the guard process, the on-disk records and orphan cleanup."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devster_tui.engine.procs import ProcRegistry, boot_id, cleanup_orphans, procs_dir
from devster_tui.executors.guard import kill_groups, read_stat, start_time
from devster_tui.executors.local import LocalExecutor
from tests.helpers import process_alive, run, wait_for
from tests.test_local_executor import start

ENGINE = str(Path(__file__).parent / "helpers" / "engine_script.py")


@contextmanager
def engine(*args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """Run the helper engine; yield it and its report; SIGKILL everything at the end."""
    proc = subprocess.Popen(
        [sys.executable, ENGINE, *args],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    report: dict[str, Any] = {}
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the engine bounds its own start-up (10 s)
        assert line, "the engine script died before reporting"
        report = json.loads(line)
        yield proc, report
    finally:
        proc.kill()
        proc.wait(timeout=10)
        for pids in report.get("tasks", {}).values():
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def task_processes(report: dict[str, Any]) -> list[tuple[int, int | None]]:
    """(pid, start time) of every task process in an engine report."""
    return [(pid, start_time(pid)) for pids in report["tasks"].values() for pid in pids]


def survivors(procs: list[tuple[int, int | None]]) -> list[int]:
    return [pid for pid, started in procs if process_alive(pid, started)]


# -- the guard --------------------------------------------------------------------------------


def test_sigkill_of_the_engine_leaves_no_task_process_after_2s() -> None:
    with engine() as (proc, report):
        procs = task_processes(report)
        assert len(procs) == 6
        assert not [pid for pid, started in procs if started is None]
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait(timeout=10)
        wait_for(lambda: not survivors(procs), 2.0, what="no surviving task process")
        assert time.monotonic() - killed_at < 2.0
        guard = report["guard"]
        wait_for(lambda: not process_alive(guard), 2.0, what="the guard to exit")


def test_guard_is_out_of_reach_of_the_terminals_ctrl_c() -> None:
    with engine("--ignore-sigint") as (proc, report):
        guard = report["guard"]
        engine_stat = read_stat(proc.pid)
        guard_stat = read_stat(guard)
        assert engine_stat is not None and guard_stat is not None
        # Its own session and group: a terminal's SIGINT goes to the foreground group only.
        assert guard_stat.sid == guard_stat.pgid == guard
        assert guard_stat.pgid != engine_stat.pgid
        os.killpg(engine_stat.pgid, signal.SIGINT)
        assert process_alive(guard)
        # ... and it still does its job afterwards.
        procs = task_processes(report)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        wait_for(lambda: not survivors(procs), 2.0, what="no surviving task process")


def test_closing_the_executor_makes_the_guard_end_forgotten_tasks(tmp_path: Path) -> None:
    async def go() -> tuple[int, int | None, int | None]:
        ex = LocalExecutor()
        proc, _ = await start(ex, ["sleep", "1000"], tmp_path)
        assert proc.pid is not None
        pid = proc.pid
        started = start_time(pid)
        guard = ex.guard_pid
        await ex.aclose()
        await proc.wait()  # the guard's SIGKILL ends it
        return pid, started, guard

    pid, started, guard = run(go())
    assert not process_alive(pid, started)
    assert guard is not None and not process_alive(guard)


def test_guard_starts_cheaply() -> None:
    async def go() -> tuple[float, float, int]:
        ex = LocalExecutor()
        t0 = time.perf_counter()
        guard = ex.start_guard()
        spawned = time.perf_counter() - t0
        assert guard is not None
        # Ready = the interpreter has started our script and sits in read(0).
        wait_for(
            # (kernels that hide wchan report "0": nothing to measure there)
            lambda: _wchan(guard) in ("pipe_read", "pipe_wait", "anon_pipe_read", "0", ""),
            10,
            what="guard blocked in read",
        )
        ready = time.perf_counter() - t0
        await ex.aclose()
        return spawned, ready, guard

    spawned, ready, _ = run(go())
    # Measured here: ~0.5 ms to spawn, ~25-30 ms until it waits in read(), 11.7 MB RSS.
    assert spawned < 0.25
    assert ready < 5


def _wchan(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return ""


def test_guard_does_not_kill_a_group_whose_id_was_reused() -> None:
    other = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    try:
        started = start_time(other.pid)
        assert started is not None
        kill_groups({other.pid: started - 1}, timeout=0.2)  # recorded start differs
        assert process_alive(other.pid, started)
        kill_groups({other.pid: started}, timeout=2)  # positive control: same start
        other.wait(timeout=5)
        assert other.returncode == -signal.SIGKILL
    finally:
        other.kill()
        other.wait(timeout=5)


# -- records and cleanup ----------------------------------------------------------------------


def test_cleanup_orphans_ends_groups_left_by_a_killed_engine(tmp_path: Path) -> None:
    state = tmp_path / ".devster"
    with engine("--no-guard", "--state-dir", str(state)) as (proc, report):
        procs = task_processes(report)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        # Without a guard the tasks survive: this is what the records are for.
        assert len(survivors(procs)) == 6
        found = cleanup_orphans(state, grace=0.5)
        assert not survivors(procs)
    pgids = {int(pgid) for pgid in report["tasks"]}
    assert {info.pgid for info in found} == pgids
    assert {info.task for info in found} == {"single", "group", "stubborn"}
    for info in found:
        assert info.pid == info.pgid
        assert set(info.pids) == set(report["tasks"][str(info.pgid)])
    assert list(procs_dir(state).glob("*.json")) == []
    assert cleanup_orphans(state) == []


def _write_record(state: Path, owner: int, owner_start: int | None, **record: Any) -> Path:
    folder = procs_dir(state)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{owner}.json"
    data = {
        "format": 1,
        "boot_id": record.pop("boot", boot_id()),
        "owner": {"pid": owner, "start": owner_start},
        "records": [record],
    }
    path.write_text(json.dumps(data))
    return path


def _dead_pid() -> int:
    """The pid of a process that has ended (an engine that is no longer running)."""
    gone = subprocess.Popen(["true"])
    gone.wait(timeout=5)
    return gone.pid


def test_cleanup_orphans_leaves_a_reused_pid_alone(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    try:
        started = start_time(other.pid)
        assert started is not None
        path = _write_record(
            tmp_path, _dead_pid(), 1, task="api", pid=other.pid, pgid=other.pid, start=started - 5
        )
        assert cleanup_orphans(tmp_path, grace=0.2) == []
        assert process_alive(other.pid, started)
        assert not path.exists()
        # Positive control: the same record with the right start time is an orphan.
        _write_record(
            tmp_path, _dead_pid(), 1, task="api", pid=other.pid, pgid=other.pid, start=started
        )
        found = cleanup_orphans(tmp_path, grace=2)
        assert [(f.task, f.pid) for f in found] == [("api", other.pid)]
        other.wait(timeout=5)
    finally:
        other.kill()
        other.wait(timeout=5)


def test_cleanup_orphans_leaves_a_running_engines_tasks_alone(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    try:
        registry = ProcRegistry(tmp_path)  # owned by this (live) test process
        registry.group_started("db", other.pid, other.pid)
        assert cleanup_orphans(tmp_path, grace=0.2) == []
        assert process_alive(other.pid)
        assert registry.path.exists()
    finally:
        other.kill()
        other.wait(timeout=5)


def test_records_from_an_earlier_boot_are_discarded(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    try:
        started = start_time(other.pid)
        path = _write_record(
            tmp_path,
            _dead_pid(),
            1,
            boot="00000000-0000-0000-0000-000000000000",
            task="api",
            pid=other.pid,
            pgid=other.pid,
            start=started,
        )
        assert cleanup_orphans(tmp_path, grace=0.2) == []
        assert process_alive(other.pid, started)
        assert not path.exists()
    finally:
        other.kill()
        other.wait(timeout=5)


def test_torn_or_foreign_record_files_do_not_break_cleanup(tmp_path: Path) -> None:
    folder = procs_dir(tmp_path)
    folder.mkdir(parents=True)
    (folder / "1.json").write_text('{"format": 1, "records": [')
    (folder / "2.json").write_text('["not", "an", "object"]')
    assert cleanup_orphans(tmp_path) == []


def test_records_file_and_directory_are_owner_only(tmp_path: Path) -> None:
    registry = ProcRegistry(tmp_path / ".devster")
    registry.group_started("web", os.getpid(), os.getpid())
    assert stat.S_IMODE(registry.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(registry.path.parent.stat().st_mode) == 0o700
    data = json.loads(registry.path.read_text())
    assert data["records"] == [
        {"task": "web", "pid": os.getpid(), "pgid": os.getpid(), "start": start_time(os.getpid())}
    ]
    registry.close()
    assert not registry.path.exists()


def test_registry_forgets_a_group_once_it_has_ended(tmp_path: Path) -> None:
    registry = ProcRegistry(tmp_path)

    async def go() -> None:
        ex = LocalExecutor(guard=False, listener=registry)
        proc, _ = await start(ex, ["sh", "-c", "exit 0"], tmp_path)
        assert [r.pid for r in registry.records] == [proc.pid]
        await proc.wait()

    run(go())
    assert registry.records == ()
    assert json.loads(registry.path.read_text())["records"] == []
