"""Pipes with real processes: tee, consumer restarts, at-most-once, drops counted, file, console."""

from __future__ import annotations

from pathlib import Path

from devster_tui.state.commands import Command
from devster_tui.state.events import T
from devster_tui.state.model import Status
from tests.test_supervisor import events, make_engine, run, session, status_is, wait_state

CAT_TO = "[PY, sink.py, {0}]"
SINK = "import sys\nfor line in sys.stdin:\n    open(sys.argv[1], 'a').write(line)\n"


def sink(tmp_path: Path) -> None:
    (tmp_path / "sink.py").write_text(SINK)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def until_lines(path: Path, count: int) -> list[str]:
    import asyncio

    for _ in range(1500):
        if len(lines(path)) >= count:
            break
        await asyncio.sleep(0.01)
    return lines(path)


def test_one_producer_tees_every_line_once_to_two_consumers(tmp_path: Path) -> None:
    sink(tmp_path)
    engine = make_engine(
        tmp_path,
        f"""
        tasks:
          gen: {{cmd: "for i in $(seq 1 500); do echo line $i; done; sleep 30"}}
          a: {{cmd: {CAT_TO.format("a.txt")}, stdin: gen.stdout}}
          b: {{cmd: {CAT_TO.format("b.txt")}, stdin: {{from: [gen]}}}}
        """,
    )

    async def body() -> None:
        expected = [f"line {i}" for i in range(1, 501)]
        assert await until_lines(tmp_path / "a.txt", 500) == expected
        assert await until_lines(tmp_path / "b.txt", 500) == expected

    run(session(engine, body))


def test_restarting_the_consumer_never_kills_the_producer_nor_repeats_a_line(
    tmp_path: Path,
) -> None:
    sink(tmp_path)
    engine = make_engine(
        tmp_path,
        f"""
        tasks:
          gen: {{cmd: "i=0; while :; do i=$((i+1)); echo $i; sleep 0.002; done"}}
          sink: {{cmd: {CAT_TO.format("sink.txt")}, stdin: gen.stdout}}
        """,
    )

    async def body() -> None:
        state = await wait_state(engine, status_is("gen", Status.RUNNING))
        producer = state.tasks["gen"].pid
        await until_lines(tmp_path / "sink.txt", 50)
        await engine.execute(Command("restart", ("sink",)))
        await wait_state(engine, lambda s: s.tasks["sink"].run == 2)
        got = await until_lines(tmp_path / "sink.txt", len(lines(tmp_path / "sink.txt")) + 50)
        numbers = [int(x) for x in got]
        assert len(numbers) == len(set(numbers)), "a line reached the consumer twice"
        assert numbers == sorted(numbers)
        assert engine.store.state.tasks["gen"].pid == producer
        assert engine.store.state.tasks["gen"].run == 1

    run(session(engine, body))


def test_drop_policy_discards_the_oldest_lines_and_counts_every_drop(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path,
        """
        tasks:
          gen: {cmd: "seq 1 300; sleep 30"}
          slow:
            cmd: "sleep 30"
            autostart: false
            stdin: {from: gen.stdout, backpressure: drop, buffer: 100}
        """,
    )

    async def body() -> None:
        state = await wait_state(engine, lambda s: s.tasks["slow"].dropped_lines == 200)
        assert state.tasks["slow"].dropped_lines == 200
        assert sum(e.data["lines"] for e in events(engine, T.TASK_OUTPUT_DROPPED)) == 200
        pipe = engine.pipes.pipes["slow"]
        assert pipe.buffer[0] == b"201"

    run(session(engine, body))


def test_block_policy_pauses_the_producer_and_drops_nothing_while_the_consumer_is_down(
    tmp_path: Path,
) -> None:
    engine = make_engine(
        tmp_path,
        """
        tasks:
          gen: {cmd: "seq 1 300; sleep 30"}
          slow:
            cmd: "sleep 30"
            autostart: false
            stdin: {from: gen.stdout, backpressure: block, buffer: 100}
        """,
    )

    async def body() -> None:
        from tests.helpers import async_wait_for

        pipe = engine.pipes.pipes["slow"]
        await async_wait_for(lambda: "gen" in engine.pipes.paused and len(pipe.buffer) >= 100, 10.0)
        held = list(pipe.buffer)
        assert held == [str(i).encode() for i in range(1, len(held) + 1)]
        assert engine.store.state.tasks["slow"].dropped_lines == 0
        assert events(engine, T.TASK_OUTPUT_DROPPED) == []

    run(session(engine, body))


def test_file_stdin_is_read_once_and_closed_and_console_stdin_takes_typed_lines(
    tmp_path: Path,
) -> None:
    sink(tmp_path)
    (tmp_path / "input.txt").write_text("one\ntwo\n")
    engine = make_engine(
        tmp_path,
        f"""
        tasks:
          count: {{cmd: "wc -l > count.txt", kind: job, stdin: {{file: input.txt}}}}
          repl: {{cmd: {CAT_TO.format("typed.txt")}, stdin: console}}
          plain: {{cmd: "sleep 30"}}
        """,
    )

    async def body() -> None:
        await wait_state(engine, status_is("count", Status.SUCCEEDED))
        assert (tmp_path / "count.txt").read_text().strip() == "2"
        await wait_state(engine, status_is("repl", Status.RUNNING))
        result = await engine.execute(Command("send_stdin", ("repl",), data=b"hello\n"))
        assert result.ok, result.message
        assert await until_lines(tmp_path / "typed.txt", 1) == ["hello"]
        refused = await engine.execute(Command("send_stdin", ("plain",), data=b"x\n"))
        assert not refused.ok and "console" in refused.message

    run(session(engine, body))


def test_a_job_consumer_gets_end_of_file_when_its_producer_job_ends(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path,
        """
        tasks:
          gen: {cmd: "seq 1 3", kind: job}
          total: {cmd: "wc -l > total.txt", kind: job, stdin: gen.stdout}
        """,
    )

    async def body() -> None:
        await wait_state(engine, status_is("total", Status.SUCCEEDED))
        assert (tmp_path / "total.txt").read_text().strip() == "3"

    run(session(engine, body))
