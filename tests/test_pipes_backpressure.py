"""``backpressure: block`` is real flow control: a full consumer pauses its producer's output.

Real processes throughout: a fast producer (200,000 numbered lines) piped into a slow
consumer with ``buffer: 100``.  ``block`` must deliver every line once and in order with no
drop, leave the producer's log complete and never kill it; ``drop`` must count exactly the
lines that went missing.  The executor seam (``pause_output`` / ``resume_output``) is
checked on its own: a paused process waits in ``write()`` and loses nothing.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from devster_tui.executors.base import ProcessSpec, Stream
from devster_tui.executors.local import LocalExecutor, LocalProcess
from devster_tui.state.commands import Command
from devster_tui.state.events import T
from devster_tui.state.model import Status
from tests.helpers import async_wait_for
from tests.test_supervisor import events, make_engine, run, session, status_is, wait_state

LINES = 200_000
"""Lines printed by the fast producer."""

PRODUCER = (
    "import sys\nw = sys.stdout.write\nfor i in range(1, int(sys.argv[1]) + 1):\n    w(f'{i}\\n')\n"
)
"""Prints ``1`` .. ``N`` as fast as Python can."""

CONSUMER = (
    "import sys, time\n"
    "out = open(sys.argv[1], 'w')\n"
    "n = 0\n"
    "for line in sys.stdin:\n"
    "    out.write(line)\n"
    "    n += 1\n"
    "    if n % 200 == 0:\n"
    "        time.sleep(0.001)\n"
    "out.close()\n"
)
"""Copies its stdin to a file, pausing a millisecond every 200 lines (about 1 s in all)."""

FAST = "import sys, shutil\nshutil.copyfileobj(sys.stdin, open(sys.argv[1], 'w'))\n"
"""Copies its stdin to a file at full speed."""


def scripts(tmp_path: Path) -> None:
    (tmp_path / "produce.py").write_text(PRODUCER)
    (tmp_path / "consume.py").write_text(CONSUMER)
    (tmp_path / "fast.py").write_text(FAST)


def numbers(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().splitlines()] if path.exists() else []


def blocked_in_write(pid: int) -> bool:
    """Whether ``pid`` sleeps inside a pipe write (``pipe_write``/``anon_pipe_write``)."""
    try:
        return "pipe_write" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False


def project(policy: str, *, autostart: bool = True, tee: bool = False) -> str:
    extra = (
        "\n  copy: {cmd: [PY, fast.py, copy.txt], kind: job, "
        f"stdin: {{from: gen.stdout, backpressure: {policy}, buffer: 100}}}}"
        if tee
        else ""
    )
    return f"""
tasks:
  gen: {{cmd: [PY, produce.py, '{LINES}'], kind: job}}
  slow:
    cmd: [PY, consume.py, out.txt]
    kind: job
    autostart: {"true" if autostart else "false"}
    stdin: {{from: gen.stdout, backpressure: {policy}, buffer: 100}}{extra}
"""


# --------------------------------------------------------------------------- engine


def test_block_loses_no_line_of_a_fast_producer_and_drops_nothing(tmp_path: Path) -> None:
    scripts(tmp_path)
    engine = make_engine(tmp_path, project("block", tee=True))
    paused_seen: list[bool] = []

    def watch_pause() -> bool:
        if engine.pipes.paused:
            paused_seen.append(True)
        return status_is("slow", Status.SUCCEEDED, Status.FAILED)(engine.store.state)

    async def body() -> None:
        await async_wait_for(watch_pause, 20.0, what="the slow consumer finishes")
        state = engine.store.state
        assert state.tasks["gen"].status is Status.SUCCEEDED, "the producer was not left alone"
        assert state.tasks["slow"].status is Status.SUCCEEDED
        await wait_state(engine, status_is("copy", Status.SUCCEEDED))
        expected = list(range(1, LINES + 1))
        assert numbers(tmp_path / "out.txt") == expected
        # The other consumer of the same producer waited too, and lost nothing either.
        assert numbers(tmp_path / "copy.txt") == expected
        assert events(engine, T.TASK_OUTPUT_DROPPED) == []
        assert engine.store.state.tasks["slow"].dropped_lines == 0
        log = engine.output.log_path("gen", "stdout")
        assert log is not None
        assert numbers(log) == expected, "the producer's own log lost lines"
        assert paused_seen, "the producer was never paused: the consumer was not slower"

    run(session(engine, body), 40.0)


def test_drop_counts_exactly_the_lines_a_slow_consumer_missed(tmp_path: Path) -> None:
    scripts(tmp_path)
    engine = make_engine(tmp_path, project("drop"))

    async def body() -> None:
        await wait_state(engine, status_is("slow", Status.SUCCEEDED), 20.0)
        got = numbers(tmp_path / "out.txt")
        assert got == sorted(set(got)), "a line arrived twice or out of order"
        missing = LINES - len(got)
        assert missing > 0, "the consumer kept up: nothing was dropped, nothing shown"
        state = await wait_state(engine, lambda s: s.tasks["slow"].dropped_lines >= missing, 5.0)
        assert state.tasks["slow"].dropped_lines == missing
        assert sum(e.data["lines"] for e in events(engine, T.TASK_OUTPUT_DROPPED)) == missing
        assert engine.pipes.paused == set(), "drop must never pause the producer"
        log = engine.output.log_path("gen", "stdout")
        assert log is not None
        assert numbers(log) == list(range(1, LINES + 1))

    run(session(engine, body), 40.0)


def test_block_holds_the_producer_while_the_consumer_is_down_without_killing_it(
    tmp_path: Path,
) -> None:
    scripts(tmp_path)
    engine = make_engine(tmp_path, project("block", autostart=False))

    async def body() -> None:
        state = await wait_state(engine, status_is("gen", Status.RUNNING))
        pid = state.tasks["gen"].pid
        assert pid is not None
        await async_wait_for(lambda: blocked_in_write(pid), 10.0, what="producer waits")
        assert "gen" in engine.pipes.paused
        state = engine.store.state
        assert state.tasks["gen"].status is Status.RUNNING
        assert state.tasks["gen"].pid == pid
        assert state.tasks["slow"].dropped_lines == 0
        held = list(engine.pipes.pipes["slow"].buffer)
        assert held == [str(i).encode() for i in range(1, len(held) + 1)]
        await engine.execute(Command("start", ("slow",)))
        await wait_state(engine, status_is("slow", Status.SUCCEEDED), 20.0)
        assert engine.store.state.tasks["gen"].status is Status.SUCCEEDED
        assert numbers(tmp_path / "out.txt") == list(range(1, LINES + 1))
        assert events(engine, T.TASK_OUTPUT_DROPPED) == []

    run(session(engine, body), 40.0)


# --------------------------------------------------------------------------- executor

WRITER = (
    "import os, sys\n"
    "total = int(sys.argv[1])\n"
    "chunk = b'y' * 65536\n"
    "sent = 0\n"
    "while total < 0 or sent < total:\n"
    "    sent += os.write(1, chunk if total < 0 else chunk[: total - sent])\n"
)
"""Writes ``argv[1]`` bytes of ``y`` to stdout (forever when negative)."""


class Sink:
    """Counts a process's output bytes and end-of-file calls."""

    def __init__(self) -> None:
        self.bytes = 0
        self.eof: list[Stream] = []

    def out(self, stream: Stream, chunk: bytes) -> None:
        assert stream not in self.eof, "output after end of file"
        self.bytes += len(chunk)

    def on_eof(self, stream: Stream) -> None:
        self.eof.append(stream)


async def spawn_writer(ex: LocalExecutor, tmp_path: Path, total: int) -> tuple[LocalProcess, Sink]:
    sink = Sink()
    spec = ProcessSpec(
        task="w",
        argv=[sys.executable, "-c", WRITER, str(total)],
        env=dict(os.environ),
        cwd=str(tmp_path),
    )
    return await ex.spawn(spec, sink.out, sink.on_eof), sink


def test_paused_process_waits_in_write_and_loses_no_byte_after_resume(tmp_path: Path) -> None:
    total = 8 * 1024 * 1024

    async def body() -> None:
        ex = LocalExecutor(guard=False)
        proc, sink = await spawn_writer(ex, tmp_path, total)
        proc.pause_output()  # before the loop ran a single reader callback
        assert proc.pid is not None
        await async_wait_for(lambda: blocked_in_write(proc.pid or 0), 10.0, what="blocked")
        assert sink.bytes == 0, "output was read while paused"
        assert proc.returncode is None
        proc.resume_output()
        status = await proc.wait()
        assert status.code == 0
        assert sink.bytes == total
        assert sorted(sink.eof) == ["stderr", "stdout"]

    run(body(), 20.0)


def test_a_paused_process_that_exits_is_still_read_to_the_end(tmp_path: Path) -> None:
    # A long drain window: only reading to the end can bring end of file in time.
    total = 100_000

    async def body() -> None:
        ex = LocalExecutor(guard=False, drain_window=60.0)
        proc, sink = await spawn_writer(ex, tmp_path, total)
        proc.pause_output()
        status = await proc.wait()
        assert status.code == 0
        assert sink.bytes == total
        assert sorted(sink.eof) == ["stderr", "stdout"]

    run(body(), 10.0)


def test_stopping_a_paused_producer_does_not_hang(tmp_path: Path) -> None:
    async def body() -> None:
        ex = LocalExecutor(guard=False, drain_window=60.0)
        proc, _sink = await spawn_writer(ex, tmp_path, -1)
        proc.pause_output()
        await async_wait_for(lambda: blocked_in_write(proc.pid or 0), 10.0, what="blocked")
        status = await proc.stop(signal.SIGTERM, 5.0)
        assert status.signal == signal.SIGTERM

    run(body(), 10.0)
