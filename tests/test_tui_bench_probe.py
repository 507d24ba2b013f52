"""The loop-lag probe (DEVSTER_LOOP_LAG_FILE) and the cockpit's heap freeze after start-up."""

from __future__ import annotations

import asyncio
import fcntl
import gc
import logging
import os
import shutil
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devster_tui.state.clock import FakeClock
from devster_tui.state.commands import Command, CommandResult
from devster_tui.state.events import T
from devster_tui.state.output import OutputStore
from devster_tui.state.store import Store
from devster_tui.tui.app import CockpitApp
from devster_tui.tui.lagprobe import (
    ENV_VAR,
    HEADER,
    LagProbe,
    percentile,
    probe_from_env,
    read_samples,
)


def busy(seconds: float) -> None:
    """Hold the event loop (the behaviour under test, not a synchronisation)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


async def until(cond: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.01)


def test_probe_missed_a_blocked_loop(tmp_path: Path) -> None:
    probe = LagProbe(tmp_path / "lag.txt", interval=0.01)

    async def main() -> None:
        probe.start()
        await until(lambda: len(probe.lags) >= 3)
        busy(0.2)
        await until(lambda: len(probe.lags) >= 6)
        await probe.aclose()

    asyncio.run(asyncio.wait_for(main(), 20))
    assert max(probe.lags) >= 0.15, list(probe.lags)
    assert min(probe.lags) >= 0.0
    assert list(probe.times) == sorted(probe.times)
    assert not probe.running


def test_samples_file_did_not_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "lag.txt"
    clock = iter([10.0, 10.05, 10.1]).__next__
    probe = LagProbe(path, interval=0.01, clock=clock)

    async def main() -> None:
        probe.start()
        await until(lambda: len(probe.lags) >= 3)
        probe.stop()
        await probe.aclose()

    asyncio.run(asyncio.wait_for(main(), 20))
    assert path.read_text().splitlines()[0] == HEADER
    samples = read_samples(path)
    assert [t for t, _ in samples] == [10.0, 10.05, 10.1]
    assert [lag for _, lag in samples] == pytest.approx(list(probe.lags), abs=1e-6)


def test_unwritable_samples_file_stopped_devster_from_closing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    probe = LagProbe(tmp_path / "missing-dir" / "lag.txt")

    async def main() -> None:
        probe.start()
        await probe.aclose()

    with caplog.at_level(logging.WARNING):
        asyncio.run(asyncio.wait_for(main(), 20))
    assert "loop lag samples not written" in caplog.text


def test_probe_ran_without_the_environment_variable(tmp_path: Path) -> None:
    assert probe_from_env({}) is None
    assert probe_from_env({ENV_VAR: ""}) is None
    probe = probe_from_env({ENV_VAR: str(tmp_path / "x.txt")})
    assert probe is not None and probe.path == tmp_path / "x.txt"


def test_percentile_used_the_wrong_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 99) == 99.0
    assert percentile(values, 50) == 50.0
    assert percentile(values, 100) == 100.0
    assert percentile([5.0], 99) == 5.0
    assert percentile([3.0, 1.0, 2.0], 0) == 1.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


class NullController:
    async def execute(self, command: Command) -> CommandResult:
        return CommandResult(True)


def make_store() -> Store:
    store = Store(clock=FakeClock())
    store.dispatch(T.ENGINE_STARTED, project="p", config_file="f", pid=1, tasks=[], version="0")
    store.dispatch_raw(T.TASK_DEFINED, "a", kind="service")
    return store


def frozen_after_first_frame(freeze: bool) -> int:
    """``gc.get_freeze_count()`` once the cockpit has painted (the heap is unfrozen again)."""
    app = CockpitApp(make_store(), OutputStore(None), NullController(), freeze_heap=freeze)
    painted: list[bool] = []

    async def main() -> int:
        async with app.run_test(size=(80, 24)) as pilot:
            app.call_after_refresh(lambda: painted.append(True))
            deadline = time.monotonic() + 10
            while not painted:
                assert time.monotonic() < deadline, "no refresh"
                await pilot.pause(0.01)
            await pilot.pause()
            return gc.get_freeze_count()

    try:
        return asyncio.run(main())
    finally:
        gc.unfreeze()


def test_cockpit_did_not_freeze_the_startup_heap() -> None:
    assert frozen_after_first_frame(True) > 1000


def test_cockpit_froze_the_heap_of_a_host_that_did_not_ask() -> None:
    assert frozen_after_first_frame(False) == 0


@pytest.mark.slow
def test_devster_up_did_not_write_the_lag_file_on_quit(tmp_path: Path) -> None:
    devster = shutil.which("devster")
    assert devster is not None
    (tmp_path / "devster.yaml").write_text(
        "version: 1\nproject: probe\ntasks:\n  idle:\n    cmd: [sleep, '600']\n"
    )
    lag_file = tmp_path / "lag.txt"
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", **{ENV_VAR: str(lag_file)})
    started = time.monotonic()
    proc = subprocess.Popen(
        [devster, "up"],
        cwd=tmp_path,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    seen = bytearray()

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            seen.extend(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while b"idle" not in seen:
            assert proc.poll() is None, bytes(seen[-2000:])
            assert time.monotonic() < deadline, bytes(seen[-2000:])
            time.sleep(0.02)  # polling interval of a deadline loop
        os.write(master, b"q")
        assert proc.wait(30) == 0, bytes(seen[-2000:])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait(10)
        reader.join(10)
        os.close(master)
    samples = read_samples(lag_file)
    assert samples, "the probe wrote samples"
    assert all(lag >= 0 for _, lag in samples)
    assert started <= samples[0][0] <= samples[-1][0] <= time.monotonic(), "one clock"
