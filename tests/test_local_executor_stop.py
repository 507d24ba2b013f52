"""Stopping a local task ends its whole process group, in bounded time, keeping its output."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from devster_tui.executors.base import ExitStatus
from devster_tui.executors.guard import group_members, start_time
from devster_tui.executors.local import LocalExecutor
from tests.helpers import async_wait_for, process_alive, run
from tests.test_local_executor import Sink, start

PY = sys.executable


def _pids(text: str) -> list[int]:
    return [int(word) for word in text.split() if word.isdigit()]


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_stop_signals_the_whole_group_not_just_the_leader(tmp_path: Path) -> None:
    async def go() -> tuple[list[tuple[int, int | None]], float]:
        ex = LocalExecutor(guard=False)
        proc, _ = await start(
            ex, ["sh", "-c", "sleep 1000 & sleep 1000 & wait"], tmp_path, stop_timeout=30
        )
        assert proc.pgid is not None
        pgid = proc.pgid
        await async_wait_for(lambda: len(group_members(pgid)) == 3, what="3 group members")
        members: list[tuple[int, int | None]] = [(m.pid, m.start) for m in group_members(pgid)]
        t0 = time.monotonic()
        status = await proc.stop(signal.SIGTERM, 30)
        assert status == ExitStatus(code=None, signal=signal.SIGTERM)
        return members, time.monotonic() - t0

    members, elapsed = run(go())
    assert not [pid for pid, started in members if process_alive(pid, started)]
    assert elapsed < 5  # far below the 30 s grace: the members ended on SIGTERM


LEADER_WITH_STUBBORN_MEMBER = textwrap.dedent(
    """
    import subprocess, sys, time
    member = subprocess.Popen(["sh", "-c", "trap '' TERM; exec sleep 1000"])
    print(member.pid, flush=True)
    time.sleep(1000)
    """
)


def test_leader_exits_on_term_while_a_group_member_ignores_it(tmp_path: Path) -> None:
    grace = 0.5

    async def go() -> tuple[ExitStatus, int, int | None, float]:
        ex = LocalExecutor(guard=False)
        proc, sink = await start(ex, [PY, "-c", LEADER_WITH_STUBBORN_MEMBER], tmp_path)
        await async_wait_for(lambda: _pids(sink.text()), what="member pid")
        member = _pids(sink.text())[0]
        # The member must have installed its SIG_IGN before we stop (the shell's exec).
        await async_wait_for(
            lambda: os.readlink(f"/proc/{member}/exe").endswith("sleep"), what="exec sleep"
        )
        member_start = start_time(member)
        t0 = time.monotonic()
        try:
            status = await proc.stop(signal.SIGTERM, grace)
        finally:
            alive = process_alive(member, member_start)
            _kill_quietly(member)
        assert not alive, "a group member that ignores SIGTERM survived the stop"
        return status, member, member_start, time.monotonic() - t0

    status, _, _, elapsed = run(go())
    assert status == ExitStatus(code=None, signal=signal.SIGTERM)
    assert grace <= elapsed < grace + 2.0


GRANDCHILD_HOLDS_PIPE = textwrap.dedent(
    """
    import subprocess, sys, time
    child = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    print(child.pid, flush=True)
    if sys.argv[1] == "stay":
        time.sleep(1000)
    """
)


def test_setsid_grandchild_holding_the_pipe_does_not_hang_stop(tmp_path: Path) -> None:
    async def go() -> tuple[float, Sink]:
        ex = LocalExecutor(guard=False, drain_window=0.2)
        proc, sink = await start(ex, [PY, "-c", GRANDCHILD_HOLDS_PIPE, "stay"], tmp_path)
        await async_wait_for(lambda: _pids(sink.text()), what="grandchild pid")
        grandchild = _pids(sink.text())[0]
        try:
            t0 = time.monotonic()
            await proc.stop(signal.SIGTERM, 5)
            return time.monotonic() - t0, sink
        finally:
            _kill_quietly(grandchild)

    elapsed, sink = run(go())
    assert elapsed < 2.0
    assert sorted(sink.eof) == ["stderr", "stdout"]


def test_setsid_grandchild_holding_the_pipe_does_not_hang_wait_after_exit(tmp_path: Path) -> None:
    async def go() -> tuple[float, ExitStatus, Sink]:
        ex = LocalExecutor(guard=False, drain_window=0.2)
        t0 = time.monotonic()
        proc, sink = await start(ex, [PY, "-c", GRANDCHILD_HOLDS_PIPE, "exit"], tmp_path)
        try:
            status = await proc.wait()
        finally:
            for pid in _pids(sink.text()):
                _kill_quietly(pid)
        return time.monotonic() - t0, status, sink

    elapsed, status, sink = run(go())
    assert status.code == 0
    assert elapsed < 3.0
    assert _pids(sink.text()), "the output written before the exit was lost"


def test_output_printed_during_stop_is_kept(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import signal, sys, time
        def bye(*_):
            for i in range(20000):
                sys.stdout.write(f"bye {i}\\n")
            sys.stdout.write("last words without newline")
            sys.exit(0)
        signal.signal(signal.SIGTERM, bye)
        print("ready", flush=True)
        time.sleep(1000)
        """
    )

    async def go() -> tuple[ExitStatus, Sink]:
        ex = LocalExecutor(guard=False)
        proc, sink = await start(ex, [PY, "-c", code], tmp_path)
        # "ready\n", not "ready": with PYTHONUNBUFFERED the newline is a write of its own,
        # and a TERM between the two would (rightly) never see it written.
        await async_wait_for(lambda: "ready\n" in sink.text(), what="ready")
        return await proc.stop(signal.SIGTERM, 10), sink

    status, sink = run(go())
    assert status == ExitStatus(code=0, signal=None)
    lines = sink.text().split("\n")
    assert lines[0] == "ready"
    assert lines[1:-1] == [f"bye {i}" for i in range(20000)]
    assert lines[-1] == "last words without newline"


def test_group_member_left_behind_by_an_exited_leader_is_ended(tmp_path: Path) -> None:
    async def go() -> tuple[ExitStatus, int, int | None]:
        ex = LocalExecutor(guard=False)
        proc, sink = await start(ex, ["sh", "-c", "sleep 1000 & echo $!"], tmp_path, stop_timeout=5)
        await async_wait_for(lambda: _pids(sink.text()), what="member pid")
        member = _pids(sink.text())[0]
        member_start = start_time(member)
        status = await proc.wait()
        alive = process_alive(member, member_start)
        if alive:
            _kill_quietly(member)
        assert not alive, "the background member outlived its task"
        return status, member, member_start

    status, _, _ = run(go())
    assert status == ExitStatus(code=0, signal=None)


def test_second_stop_kills_at_once(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(1000)"
    )

    async def go() -> tuple[ExitStatus, ExitStatus, float]:
        ex = LocalExecutor(guard=False)
        proc, sink = await start(ex, [PY, "-c", code], tmp_path)
        await async_wait_for(lambda: "ready" in sink.text(), what="ready")
        first = asyncio.ensure_future(proc.stop(signal.SIGTERM, 60))
        for _ in range(5):
            await asyncio.sleep(0)
        t0 = time.monotonic()
        second = await proc.stop(signal.SIGKILL, 0)
        elapsed = time.monotonic() - t0
        return await first, second, elapsed

    first, second, elapsed = run(go())
    assert first == second == ExitStatus(code=None, signal=signal.SIGKILL)
    assert elapsed < 2.0


def test_stop_after_exit_returns_the_recorded_status(tmp_path: Path) -> None:
    async def go() -> tuple[ExitStatus, ExitStatus]:
        ex = LocalExecutor(guard=False)
        proc, _ = await start(ex, ["sh", "-c", "exit 7"], tmp_path)
        status = await proc.wait()
        proc.send_signal(signal.SIGTERM)  # no-op once ended: must not raise
        return status, await proc.stop(signal.SIGTERM, 1)

    assert run(go()) == (ExitStatus(code=7, signal=None), ExitStatus(code=7, signal=None))


def test_send_signal_reaches_every_group_member(tmp_path: Path) -> None:
    async def go() -> tuple[ExitStatus, list[tuple[int, int | None]]]:
        ex = LocalExecutor(guard=False)
        proc, _ = await start(ex, ["sh", "-c", "sleep 1000 & wait"], tmp_path)
        assert proc.pgid is not None
        pgid = proc.pgid
        await async_wait_for(lambda: len(group_members(pgid)) == 2, what="2 members")
        members: list[tuple[int, int | None]] = [(m.pid, m.start) for m in group_members(pgid)]
        proc.send_signal(signal.SIGUSR1)
        return await proc.wait(), members

    status, members = run(go())
    assert status == ExitStatus(code=None, signal=signal.SIGUSR1)
    assert not [pid for pid, started in members if process_alive(pid, started)]


ZOMBIE_ENGINE = textwrap.dedent(
    """
    import asyncio, ctypes, json, os, signal, sys, time
    from devster_tui.executors.base import ProcessSpec
    from devster_tui.executors.guard import group_members
    from devster_tui.executors.local import LocalExecutor

    # Become the subreaper of our descendants and never reap the orphans: like a container
    # whose PID 1 does not reap zombies.
    assert ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0
    leader = (
        "import os, time\\n"
        "pid = os.fork()\\n"
        "if pid == 0:\\n    os._exit(0)\\n"
        "print(pid, flush=True)\\n"
        "time.sleep(1000)\\n"
    )

    async def main():
        out = []
        ex = LocalExecutor(guard=False)
        spec = ProcessSpec(task="t", argv=[sys.executable, "-c", leader],
                           env=dict(os.environ), cwd="/")
        proc = await ex.spawn(spec, lambda s, d: out.append(d), lambda s: None)
        while not out:
            await asyncio.sleep(0.005)
        t0 = time.monotonic()
        await proc.stop(signal.SIGTERM, 10)
        elapsed = time.monotonic() - t0
        zombies = [m.pid for m in group_members(proc.pgid, live_only=False)]
        print(json.dumps({"elapsed": elapsed, "zombies": zombies}))

    asyncio.run(main())
    """
)


def test_unreaped_zombie_member_does_not_stall_stop(tmp_path: Path) -> None:
    # The leader never reaps its child; once the leader dies the zombie goes to a subreaper
    # (or PID 1) that may never reap it, and keeps the group id "existing" for killpg.
    done = subprocess.run(
        [PY, "-c", ZOMBIE_ENGINE], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["zombies"], "the scenario did not leave a zombie in the group"
    assert result["elapsed"] < 2.0
