"""The scripted fake executor and virtual time behave like the real thing where tests rely on it.

A scenario test is only as true as its fake: these pin what a script means (output at its
times, exits, signal handling, the SIGKILL after the grace, slow and failing spawns) and
that virtual time is exact, costs no real time and does not run ahead of worker threads.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

import pytest

from devster_tui.executors.base import ExitStatus, ProcessSpec, SpawnError, Stream
from devster_tui.executors.fake import (
    FakeExecutor,
    LoopClock,
    Run,
    SpawnFails,
    Step,
    Trap,
    VirtualTimeLoop,
    run_virtual,
)

R = TypeVar("R")
TERM = signal.SIGTERM
KILL = signal.SIGKILL


def spec(task: str = "svc", stdin: Literal["null", "pipe"] = "null") -> ProcessSpec:
    """What a test asks the fake for (only the task name and stdin matter to it)."""
    return ProcessSpec(task=task, argv=["x"], env={}, cwd="/", stdin=stdin)


class Sink:
    """Collects what a process hands to its output and end-of-file callbacks, with times."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, str, bytes]] = []

    def output(self, stream: Stream, chunk: bytes) -> None:
        self.seen.append((asyncio.get_running_loop().time(), stream, chunk))

    def eof(self, stream: Stream) -> None:
        self.seen.append((asyncio.get_running_loop().time(), f"eof:{stream}", b""))


def virtual(body: Callable[[], Coroutine[Any, Any, R]]) -> R:
    """Run ``body()`` on virtual time with a virtual deadline of an hour."""

    async def bounded() -> R:
        async with asyncio.timeout(3600):
            return await body()

    return run_virtual(bounded())


def test_output_and_exit_follow_the_script_and_wait_returns_after_eof() -> None:
    executor = FakeExecutor(
        {"svc": [Run(output=[(0.0, "stdout", b"a\n"), (0.2, "stderr", b"b\n")], exit_at=0.5)]}
    )
    sink = Sink()

    async def body() -> tuple[ExitStatus, float]:
        proc = await executor.spawn(spec(), sink.output, sink.eof)
        status = await proc.wait()
        return status, asyncio.get_running_loop().time()

    status, ended = virtual(body)
    assert status == ExitStatus(code=0, signal=None)
    assert ended == 0.5
    assert sink.seen == [
        (0.0, "stdout", b"a\n"),
        (0.2, "stderr", b"b\n"),
        (0.5, "eof:stdout", b""),
        (0.5, "eof:stderr", b""),
    ]
    assert [c.kind for c in executor.calls] == ["spawn", "spawned", "exit"]


def test_output_scheduled_after_the_exit_never_arrives() -> None:
    executor = FakeExecutor({"svc": [Run(output=[(1.0, "stdout", b"late\n")], exit_at=0.5)]})
    sink = Sink()

    async def body() -> None:
        proc = await executor.spawn(spec(), sink.output, sink.eof)
        await proc.wait()
        await asyncio.sleep(2)

    virtual(body)
    assert [s for _t, s, _c in sink.seen] == ["eof:stdout", "eof:stderr"]


def test_a_process_ignoring_the_stop_signal_is_killed_when_the_grace_ends() -> None:
    executor = FakeExecutor({"svc": [Run(ignore=frozenset({TERM}))]})

    async def body() -> tuple[ExitStatus, float]:
        proc = await executor.spawn(spec(), Sink().output, Sink().eof)
        status = await proc.stop(TERM, 3.0)
        return status, asyncio.get_running_loop().time()

    status, ended = virtual(body)
    assert status == ExitStatus(code=None, signal=KILL)
    assert ended == 3.0
    assert [(c.signal, c.via) for c in executor.calls_of("svc", "signal")] == [
        (TERM, "stop"),
        (KILL, "kill"),
    ]


def test_a_trapped_stop_signal_exits_with_the_traps_code_before_the_kill() -> None:
    executor = FakeExecutor({"svc": [Run(traps={TERM: Trap(after=0.25, code=3)})]})

    async def body() -> tuple[ExitStatus, float]:
        proc = await executor.spawn(spec(), Sink().output, Sink().eof)
        status = await proc.stop(TERM, 10.0)
        await asyncio.sleep(20)  # long past the grace: no SIGKILL may follow the exit
        return status, proc.signals[-1]

    status, last = virtual(body)
    assert status == ExitStatus(code=3, signal=None)
    assert last == TERM
    assert executor.signals("svc") == [TERM]
    assert executor.calls_of("svc", "exit")[0].at == 0.25


def test_an_untrapped_signal_ends_the_process_on_the_next_loop_iteration() -> None:
    executor = FakeExecutor({"svc": [Run()]})

    async def body() -> tuple[ExitStatus | None, ExitStatus]:
        proc = await executor.spawn(spec(), Sink().output, Sink().eof)
        proc.send_signal(signal.SIGINT)
        before = proc.status  # a signal is asynchronous, as for a real process
        return before, await proc.wait()

    before, after = virtual(body)
    assert before is None
    assert after == ExitStatus(code=None, signal=signal.SIGINT)


def test_a_second_stop_brings_the_kill_forward_and_signals_after_the_end_do_nothing() -> None:
    executor = FakeExecutor({"svc": [Run(ignore=frozenset({TERM}))]})

    async def body() -> float:
        proc = await executor.spawn(spec(), Sink().output, Sink().eof)
        first = asyncio.create_task(proc.stop(TERM, 30.0))
        await asyncio.sleep(1)
        await proc.stop(TERM, 0.5)
        await first
        proc.send_signal(TERM)
        return asyncio.get_running_loop().time()

    assert virtual(body) == 1.5
    assert executor.signals("svc") == [TERM, TERM, KILL]
    assert [(c.signal, c.grace) for c in executor.calls_of("svc", "stop")] == [
        (TERM, 30.0),
        (TERM, 0.5),
    ]


def test_spawn_failures_carry_the_message_and_errno_and_the_last_step_repeats() -> None:
    executor = FakeExecutor(
        {"broken": [SpawnFails("permission denied: x", errno.EACCES), Run(exit_at=1)]}
    )

    async def body() -> list[object]:
        outcomes: list[object] = []
        for _ in range(3):
            try:
                proc = await executor.spawn(spec("broken"), Sink().output, Sink().eof)
            except SpawnError as exc:
                outcomes.append((str(exc), exc.errno))
            else:
                outcomes.append(await proc.wait())
        return outcomes

    assert virtual(body) == [
        ("permission denied: x", errno.EACCES),
        ExitStatus(code=0, signal=None),
        ExitStatus(code=0, signal=None),
    ]
    assert [c.number for c in executor.calls_of("broken", "spawn")] == [1, 2, 3]


def test_a_spawn_without_a_script_fails_visibly_unless_there_is_a_default() -> None:
    async def body(executor: FakeExecutor) -> str:
        try:
            await executor.spawn(spec("svc:stop"), Sink().output, Sink().eof)
        except SpawnError as exc:
            return str(exc)
        return "spawned"

    assert virtual(lambda: body(FakeExecutor())) == "fake executor: no script for task svc:stop"
    assert virtual(lambda: body(FakeExecutor(default=Run(exit_at=0)))) == "spawned"


def test_a_script_function_gets_the_spec_and_the_spawn_number() -> None:
    seen: list[tuple[str, int]] = []

    def script(asked: ProcessSpec, number: int) -> Step:
        seen.append((asked.task, number))
        return Run(exit_at=0, code=number)

    executor = FakeExecutor({"job": script})

    async def body() -> list[int | None]:
        codes = []
        for _ in range(2):
            proc = await executor.spawn(spec("job"), Sink().output, Sink().eof)
            codes.append((await proc.wait()).code)
        return codes

    assert virtual(body) == [1, 2]
    assert seen == [("job", 1), ("job", 2)]


def test_a_slow_spawn_takes_its_time_and_a_cancelled_one_is_recorded() -> None:
    executor = FakeExecutor({"svc": [Run(spawn_delay=2.0)]})

    async def body() -> float:
        slow = asyncio.create_task(executor.spawn(spec(), Sink().output, Sink().eof))
        await asyncio.sleep(1)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        await executor.spawn(spec(), Sink().output, Sink().eof)
        return asyncio.get_running_loop().time()

    assert virtual(body) == 3.0
    assert [(c.kind, c.at) for c in executor.calls_of("svc") if c.kind != "spawn"] == [
        ("spawn_cancelled", 1.0),
        ("spawned", 3.0),
    ]


def test_paused_output_is_held_resumed_in_order_and_flushed_by_the_end() -> None:
    chunks: list[tuple[float, Stream, bytes]] = [
        (0.1, "stdout", b"1"),
        (0.2, "stdout", b"2"),
        (0.6, "stdout", b"3"),
    ]
    executor = FakeExecutor({"svc": [Run(output=chunks, exit_at=1.0)]})
    sink = Sink()

    async def body() -> None:
        proc = await executor.spawn(spec(), sink.output, sink.eof)
        proc.pause_output()
        await asyncio.sleep(0.5)
        assert sink.seen == []
        proc.resume_output()
        proc.pause_output()
        await proc.wait()

    virtual(body)
    assert [(t, c) for t, _s, c in sink.seen if c] == [(0.5, b"1"), (0.5, b"2"), (1.0, b"3")]


def test_stdin_is_recorded_and_refused_once_closed_or_not_a_pipe() -> None:
    executor = FakeExecutor({"cat": [Run(exit_at=1.0)]})

    async def body() -> None:
        proc = await executor.spawn(spec("cat", stdin="pipe"), Sink().output, Sink().eof)
        await proc.write_stdin(b"hello ")
        await proc.write_stdin(b"world")
        proc.close_stdin()
        with pytest.raises(BrokenPipeError):
            await proc.write_stdin(b"more")
        assert bytes(proc.stdin) == b"hello world"
        other = await executor.spawn(spec("cat"), Sink().output, Sink().eof)
        with pytest.raises(BrokenPipeError):
            await other.write_stdin(b"x")

    virtual(body)
    assert [c.kind for c in executor.calls_of("cat") if "stdin" in c.kind] == [
        "stdin",
        "stdin",
        "close_stdin",
    ]


def test_a_script_cannot_ignore_or_trap_sigkill() -> None:
    with pytest.raises(ValueError, match="SIGKILL"):
        Run(ignore=frozenset({KILL}))
    with pytest.raises(ValueError, match="SIGKILL"):
        Run(traps={KILL: Trap()})
    with pytest.raises(ValueError, match="negative"):
        Run(exit_at=-1)


# --------------------------------------------------------------------------- virtual time


def test_virtual_time_jumps_to_timers_exactly_and_costs_no_real_time() -> None:
    clock = LoopClock(wall_zero=1000.0)

    async def body() -> tuple[float, float, float]:
        await asyncio.sleep(1800)
        async with asyncio.timeout(7):
            await asyncio.sleep(5)
        return asyncio.get_running_loop().time(), clock.monotonic(), clock.wall()

    started = time.monotonic()
    assert virtual(body) == (1805.0, 1805.0, 2805.0)
    assert time.monotonic() - started < 5.0  # half an hour, virtually


def test_virtual_time_stands_still_while_a_worker_thread_runs() -> None:
    release = threading.Event()

    def work() -> float:
        if not release.wait(10):
            raise TimeoutError("never released")
        return 1.0

    async def body() -> tuple[float, bool]:
        loop = asyncio.get_running_loop()
        timer = asyncio.create_task(asyncio.sleep(60))
        worker = asyncio.create_task(asyncio.to_thread(work))
        await asyncio.sleep(0)
        threading.Timer(0.05, release.set).start()
        await worker
        # 60 s of virtual time would have passed at once without the worker rule.
        return loop.time(), timer.done()

    assert virtual(body) == (0.0, False)


def test_a_worker_thread_holding_virtual_time_too_long_fails_loudly() -> None:
    release = threading.Event()

    async def body() -> None:
        await asyncio.gather(asyncio.sleep(1), asyncio.to_thread(release.wait, 10))

    loop = VirtualTimeLoop(worker_limit=0.1)
    try:
        with pytest.raises(TimeoutError, match="worker thread"):
            loop.run_until_complete(body())
    finally:
        release.set()
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def test_real_io_is_served_and_waited_for_when_no_timer_is_due() -> None:
    async def body() -> tuple[bytes, bytes, float]:
        loop = asyncio.get_running_loop()
        left, right = socket.socketpair()
        with left, right:
            left.setblocking(False)
            right.send(b"now")
            ready = await loop.sock_recv(left, 3)
            # No timer is pending: the loop waits for the socket in real time (the
            # thread sends within 50 ms; pytest's timeout bounds a broken loop).
            threading.Timer(0.05, right.send, (b"late",)).start()
            later = await loop.sock_recv(left, 4)
        return ready, later, loop.time()

    assert run_virtual(body()) == (b"now", b"late", 0.0)
