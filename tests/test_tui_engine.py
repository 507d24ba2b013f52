"""Pilot tests of the cockpit driving the real Engine with real processes."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.pilot import Pilot

from devster_tui.config.loader import load_project
from devster_tui.engine.supervisor import Engine
from devster_tui.state.model import LIVE_STATUSES, Status
from devster_tui.tui.app import CockpitApp
from devster_tui.tui.screens.dialogs import ConfirmScreen, StdinScreen
from devster_tui.tui.themes import builtin_theme_dir

SLEEPER = "import os, time; print('hello from', os.getpid(), flush=True); time.sleep(120)"
PROJECT = f"""
version: 1
project: cockpit-test
tasks:
  svc:
    cmd: [{sys.executable}, -c, "{SLEEPER}"]
  ro:
    cmd: [{sys.executable}, -c, "{SLEEPER}"]
    mode: observe
  job:
    kind: job
    cmd: [{sys.executable}, -c, "print('job done')"]
"""


async def until(pilot: Pilot[int], cond: Callable[[], object], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await pilot.pause(0.02)


def drive(
    tmp_path: Path,
    test: Callable[[Pilot[int], Engine], Awaitable[None]],
    project: str = PROJECT,
) -> None:
    file = tmp_path / "devster.yaml"
    file.write_text(textwrap.dedent(project), "utf-8")
    engine = Engine(load_project(file), state_dir=tmp_path / "state")

    async def main() -> None:
        await engine.start()
        app = CockpitApp(engine.store, engine.output, engine, theme_dirs=[builtin_theme_dir()])
        try:
            async with app.run_test(size=(100, 30)) as pilot:
                await test(pilot, engine)
        finally:
            await asyncio.wait_for(engine.shutdown(force=True), 30)

    asyncio.run(main())


def status(engine: Engine, name: str) -> Status:
    return engine.store.state.tasks[name].status


async def select(pilot: Pilot[int], name: str) -> None:
    app = pilot.app
    assert isinstance(app, CockpitApp)
    app.tasks.select(name)
    await until(pilot, lambda: app.log_pane.task_name == name)


def test_restart_key_restarts_the_real_process_and_the_pane_shows_both_runs(
    tmp_path: Path,
) -> None:
    async def test(pilot: Pilot[int], engine: Engine) -> None:
        await until(pilot, lambda: status(engine, "svc") is Status.RUNNING)
        first_pid = engine.store.state.tasks["svc"].pid
        await select(pilot, "svc")
        await pilot.press("r")
        await until(
            pilot,
            lambda: (
                engine.store.state.tasks["svc"].run == 2 and status(engine, "svc") is Status.RUNNING
            ),
        )
        assert engine.store.state.tasks["svc"].pid != first_pid
        app = pilot.app
        assert isinstance(app, CockpitApp)
        try:
            await until(
                pilot, lambda: sum("hello from" in t for t in app.log_pane.visible_text()) == 2
            )
        except AssertionError:
            lines = engine.output.read("svc", "both", 0, 50)
            raise AssertionError(
                f"pane shows {app.log_pane.visible_text()!r}; store has {lines!r}"
            ) from None
        assert app.log_pane.jump_last_restart() is not None

    drive(tmp_path, test)


def test_stop_then_start_keys_stop_and_start_the_real_process(tmp_path: Path) -> None:
    async def test(pilot: Pilot[int], engine: Engine) -> None:
        await until(pilot, lambda: status(engine, "svc") is Status.RUNNING)
        await select(pilot, "svc")
        await pilot.press("x")
        await until(pilot, lambda: status(engine, "svc") is Status.STOPPED)
        await pilot.press("s")
        await until(pilot, lambda: status(engine, "svc") in LIVE_STATUSES)

    drive(tmp_path, test)


def test_stopping_an_observe_task_needs_the_confirmation(tmp_path: Path) -> None:
    async def test(pilot: Pilot[int], engine: Engine) -> None:
        await until(pilot, lambda: status(engine, "ro") is Status.RUNNING)
        await select(pilot, "ro")
        await pilot.press("x")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(pilot.app.screen, ConfirmScreen))
        assert status(engine, "ro") is Status.RUNNING
        await pilot.press("x")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: status(engine, "ro") is Status.STOPPED)

    drive(tmp_path, test)


def test_trigger_key_reruns_a_finished_job(tmp_path: Path) -> None:
    async def test(pilot: Pilot[int], engine: Engine) -> None:
        await until(pilot, lambda: status(engine, "job") is Status.SUCCEEDED)
        await select(pilot, "job")
        await pilot.press("t")
        await until(
            pilot,
            lambda: (
                engine.store.state.tasks["job"].run == 2
                and status(engine, "job") is Status.SUCCEEDED
            ),
        )

    drive(tmp_path, test)


def test_autorestart_key_toggles_the_engine_setting(tmp_path: Path) -> None:
    async def test(pilot: Pilot[int], engine: Engine) -> None:
        await select(pilot, "svc")
        assert engine.store.state.tasks["svc"].autorestart
        await pilot.press("R")
        await until(pilot, lambda: not engine.store.state.tasks["svc"].autorestart)
        await pilot.press("R")
        await until(pilot, lambda: engine.store.state.tasks["svc"].autorestart)

    drive(tmp_path, test)


ECHO = "import sys\\nfor line in sys.stdin: print('got', line.strip(), flush=True)"
EDGES = f"""
version: 1
project: cockpit-edges
observers:
  go: {{manual: {{prompt: "Run the gated job?"}}}}
  src: {{files: {{paths: [src]}}}}
tasks:
  gated:
    kind: job
    cmd: [{sys.executable}, -c, "print('gated ran')"]
    triggers: [go]
  built:
    kind: job
    cmd: [{sys.executable}, -c, "print('built')"]
    triggers: [src]
  echo:
    cmd: [{sys.executable}, -c, "{ECHO}"]
    stdin: console
"""


def test_approve_key_opens_a_real_gate_and_the_job_runs(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()

    async def test(pilot: Pilot[int], engine: Engine) -> None:
        await until(pilot, lambda: status(engine, "gated") is Status.GATED)
        assert engine.store.state.tasks["gated"].gate_prompt == "Run the gated job?"
        await select(pilot, "gated")
        await pilot.press("a")
        await until(pilot, lambda: status(engine, "gated") is Status.SUCCEEDED)
        assert [line.data for line in engine.output.read("gated", "stdout", 0, 10)] == [
            b"gated ran"
        ]

    drive(tmp_path, test, EDGES)


def test_watch_key_toggles_real_file_watching(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()

    async def test(pilot: Pilot[int], engine: Engine) -> None:
        await until(pilot, lambda: status(engine, "built") is Status.SUCCEEDED)
        await select(pilot, "built")
        await pilot.press("W")
        await until(pilot, lambda: not engine.store.state.tasks["built"].watching)
        await pilot.press("W")
        await until(pilot, lambda: engine.store.state.tasks["built"].watching)
        runs = engine.store.state.tasks["built"].run
        (tmp_path / "src" / "a.py").write_text("x = 1\n")
        await until(
            pilot,
            lambda: (
                engine.store.state.tasks["built"].run == runs + 1
                and status(engine, "built") is Status.SUCCEEDED
            ),
        )

    drive(tmp_path, test, EDGES)


def test_typing_into_a_console_stdin_task_reaches_the_real_process(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()

    async def test(pilot: Pilot[int], engine: Engine) -> None:
        await until(pilot, lambda: status(engine, "echo") is Status.RUNNING)
        await select(pilot, "echo")
        await pilot.press("i")
        await until(pilot, lambda: isinstance(pilot.app.screen, StdinScreen))
        await pilot.press("h", "i", "enter")
        await until(
            pilot,
            lambda: (
                b"got hi" in [line.data for line in engine.output.read("echo", "stdout", 0, 10)]
            ),
        )
        await pilot.press("escape")

    drive(tmp_path, test, EDGES)
