"""``devster attach``: the cockpit as an API client of a real engine (pilot tests)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from devster_tui.api.client import Address
from devster_tui.api.remote import RemoteEngine
from devster_tui.state.model import Status
from devster_tui.tui.app import CockpitApp
from devster_tui.tui.themes import builtin_theme_dir
from tests.test_api_support import run, runtime_env, served, wait_state

PROJECT = """
project: attached
tasks:
  svc:
    cmd: [PY, -c, "import os, time\\nprint('hello from', os.getpid(), flush=True)\\ntime.sleep(60)"]
  other:
    cmd: [PY, -c, "import time\\ntime.sleep(60)"]
"""


async def until(pilot: Pilot[int], cond: Callable[[], object], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await pilot.pause(0.02)


def test_attached_cockpit_mirrors_state_restarts_over_the_socket_and_quits_without_stopping(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        with runtime_env():
            async with served(tmp_path, PROJECT) as (engine, _server, lock):
                await wait_state(engine, lambda s: s.tasks["svc"].status is Status.RUNNING)
                remote = await RemoteEngine.connect(Address(socket=str(lock.socket)))
                assert (
                    remote.store.state == engine.store.state or remote.store.seq < engine.store.seq
                )
                sync = asyncio.create_task(remote.run())
                app = CockpitApp(
                    remote.store, remote.output, remote, theme_dirs=[builtin_theme_dir()]
                )
                async with app.run_test(size=(100, 30)) as pilot:
                    await until(pilot, lambda: remote.store.seq == engine.store.seq)
                    assert remote.store.state.tasks == engine.store.state.tasks
                    app.tasks.select("svc")
                    await until(pilot, lambda: app.log_pane.task_name == "svc")
                    await until(
                        pilot, lambda: any("hello from" in t for t in app.log_pane.visible_text())
                    )
                    first = engine.store.state.tasks["svc"].pid
                    await pilot.press("r")
                    await until(
                        pilot,
                        lambda: (
                            engine.store.state.tasks["svc"].run == 2
                            and engine.store.state.tasks["svc"].status is Status.RUNNING
                        ),
                    )
                    assert engine.store.state.tasks["svc"].pid != first
                    commands = [e for e in engine.store.events_since(0) if e.type == "command"]
                    assert commands[-1].data["by"] == "tui"
                    await until(
                        pilot,
                        lambda: sum("hello from" in t for t in app.log_pane.visible_text()) == 2,
                    )
                    await until(pilot, lambda: remote.store.state.tasks["svc"].run == 2)
                    await pilot.press("q")
                assert engine.store.state.tasks["svc"].status is Status.RUNNING
                assert engine.store.state.tasks["other"].status is Status.RUNNING
                assert not engine.store.state.stopping
                sync.cancel()
                await asyncio.gather(sync, return_exceptions=True)

    run(body())


def test_attached_cockpit_closes_when_the_engine_stops(tmp_path: Path) -> None:
    async def body() -> None:
        with runtime_env():
            async with served(tmp_path, PROJECT) as (engine, _server, lock):
                await wait_state(engine, lambda s: s.tasks["svc"].status is Status.RUNNING)
                remote = await RemoteEngine.connect(Address(socket=str(lock.socket)))
                app = CockpitApp(
                    remote.store, remote.output, remote, theme_dirs=[builtin_theme_dir()]
                )
                sync = asyncio.create_task(remote.run(lambda: app.exit(0)))
                async with app.run_test(size=(100, 30)) as pilot:
                    await until(pilot, lambda: remote.store.seq == engine.store.seq)
                    await engine.shutdown()
                    await until(pilot, lambda: remote.ended.is_set())
                    await until(pilot, lambda: remote.store.state.exit_code is not None)
                await asyncio.wait_for(sync, 10)

    run(body())
