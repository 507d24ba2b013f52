"""The headless printer: prefixes, colours only on a terminal, order, and ring overruns."""

from __future__ import annotations

import asyncio
import io
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

from devster_tui.clients.headless import HeadlessPrinter, describe
from devster_tui.state.clock import FakeClock
from devster_tui.state.events import T
from devster_tui.state.output import OutputStore
from devster_tui.state.store import Store


def _printer(
    color: bool, memory_lines: int = 1000
) -> tuple[Store, OutputStore, io.BytesIO, HeadlessPrinter]:
    store = Store(FakeClock())
    output = OutputStore(None, memory_lines=memory_lines)
    out = io.BytesIO()
    printer = HeadlessPrinter(store, output, out, tasks=["api", "db"], color=color)
    return store, output, out, printer


def test_plain_output_has_padded_prefixes_stderr_marker_and_no_escape_codes() -> None:
    store, output, out, printer = _printer(color=False)
    output.append("api", "stdout", b"hello\n", 1)
    output.append("api", "stderr", b"warn\n", 1)
    store.dispatch_raw(
        T.TASK_EXITED, "api", run=1, code=1, signal=None, success=False, duration=0.5
    )
    asyncio.run(printer.aclose())
    assert out.getvalue().decode().splitlines() == [
        "api     | hello",
        "api     ! warn",
        "api     * exited 1 after 500ms",
    ]


def test_colour_codes_appear_only_when_asked_for() -> None:
    _, output, out, printer = _printer(color=True)
    output.append("db", "stdout", b"ready\n", 1)
    asyncio.run(printer.aclose())
    assert re.fullmatch(rb"\x1b\[\d+mdb      \| \x1b\[0mready\n", out.getvalue())


def test_status_line_follows_the_output_printed_before_the_event() -> None:
    store, output, out, printer = _printer(color=False)
    output.append("api", "stdout", b"last words\n", 1)
    store.dispatch_raw(T.TASK_FAILED, "api", reason="boom", last_exit="exit 2")
    output.append("api", "stdout", b"after\n", 2)
    asyncio.run(printer.aclose())
    assert out.getvalue().decode().splitlines() == [
        "api     | last words",
        "api     * failed: boom (last: exit 2)",
        "api     | after",
    ]


def test_lines_evicted_before_printing_are_reported_not_silently_lost() -> None:
    _, output, out, printer = _printer(color=False, memory_lines=100)
    output.append("api", "stdout", b"".join(b"%d\n" % i for i in range(250)), 1)
    asyncio.run(printer.aclose())
    lines = out.getvalue().decode().splitlines()
    assert lines[0] == "api     * ... 150 lines not shown (they are in the log)"
    assert lines[1] == "api     | 150"
    assert lines[-1] == "api     | 249"


def test_describe_covers_the_lifecycle_vocabulary() -> None:
    store = Store(FakeClock())
    backoff = store.dispatch(T.TASK_BACKOFF, "a", delay=2.0, attempt=3)
    blocked = store.dispatch_raw(T.TASK_BLOCKED, "a", reason="dependency db not healthy after 5s")
    killed = store.dispatch_raw(T.TASK_EXITED, "a", code=None, signal="SIGKILL", duration=12.0)
    assert describe(backoff) == "restarting in 2.0s (attempt 3)"
    assert describe(blocked) == "blocked: dependency db not healthy after 5s"
    assert describe(killed) == "killed by SIGKILL after 12s"


def test_printer_run_loop_prints_output_as_it_arrives() -> None:
    async def main() -> bytes:
        store = Store(FakeClock())
        output = OutputStore(None)
        out = io.BytesIO()
        printer = HeadlessPrinter(store, output, out, tasks=["t"], color=False)
        task = asyncio.create_task(printer.run())
        output.append("t", "stdout", b"one\n", 1)
        deadline = time.monotonic() + 5
        while b"one" not in out.getvalue():
            assert time.monotonic() < deadline, "printer never printed"
            await asyncio.sleep(0.01)
        await printer.aclose()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return out.getvalue()

    assert asyncio.run(main()) == b"t       | one\n"


def test_up_no_tui_colours_task_names_on_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "devster.yaml").write_text('tasks: {hello: {cmd: "echo hi", kind: job}}\n')
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "devster_tui", "up", "--no-tui"],
        cwd=tmp_path,
        stdout=follower,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    chunks: list[bytes] = []
    try:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(timeout=20) == 0
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
    text = b"".join(chunks)
    assert re.search(rb"\x1b\[\d+mhello   \| \x1b\[0mhi", text)
