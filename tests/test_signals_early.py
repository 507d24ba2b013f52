"""SIGTERM/SIGINT to ``devster up`` before ``engine.started``: a prompt, clean stop, no hang.

The window before ``engine.started`` is made wide and deterministic with a real leftover:
a process group recorded by an engine that is gone, whose leader ignores SIGTERM.  The new
engine's orphan cleanup (part of its start, before ``engine.started``) sends it SIGTERM
and waits a second before the SIGKILL; the leftover writes a marker file when the SIGTERM
arrives, and that is when the test signals devster.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devster_tui.api.paths import read_lock_pid, runtime_dir
from devster_tui.state.eventlog import read_events
from devster_tui.state.events import T
from tests.test_api_support import runtime_env

PY = sys.executable
DEADLINE = 20.0

PROJECT = """
tasks:
  db:
    cmd: [PY, -c, "open('db.started', 'w').close()\\nimport time\\nwhile True: time.sleep(0.2)"]
    ensure:
      - mkdir: data
  web:
    cmd: [PY, -c, "open('web.started', 'w').close()\\nimport time\\nwhile True: time.sleep(0.2)"]
    depends_on: [db]
"""

HEALTH_GATED = """
tasks:
  db:
    cmd: [PY, -c, "open('db.started', 'w').close()\\nimport time\\nwhile True: time.sleep(0.2)"]
    health: {exec: [PY, -c, "raise SystemExit(1)"], interval: 200ms}
  web:
    cmd: [PY, -c, "open('web.started', 'w').close()\\nimport time\\nwhile True: time.sleep(0.2)"]
    depends_on: {db: {condition: healthy}}
"""

# A leftover that ignores SIGTERM and says when it got one.
LEFTOVER = """
import os, signal, sys, time
def got(*_):
    open(sys.argv[1], 'w').close()
signal.signal(signal.SIGTERM, got)
open(sys.argv[1] + '.ready', 'w').close()
while True:
    time.sleep(0.1)
"""

# Records the leftover's group the way a (now dead) engine's registry does.
RECORD = """
import sys
from devster_tui.engine.procs import ProcRegistry
registry = ProcRegistry(sys.argv[1])
pid = int(sys.argv[2])
registry.group_started('old', pid, pid)
"""


@pytest.fixture(autouse=True)
def _private_runtime() -> Iterator[Path]:
    with runtime_env() as path:
        yield path


def _poll(check: object, what: str, limit: float = DEADLINE) -> None:
    assert callable(check)
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.01)


def _project(tmp_path: Path, yaml: str = PROJECT) -> Path:
    file = tmp_path / "devster.yaml"
    file.write_text(textwrap.dedent(yaml).replace("PY", PY))
    return file


def _leftover(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """A recorded group of a dead engine whose leader ignores SIGTERM."""
    marker = tmp_path / "leftover.sigterm"
    proc = subprocess.Popen(
        [PY, "-c", LEFTOVER, str(marker)], start_new_session=True, stdin=subprocess.DEVNULL
    )
    try:
        _poll(lambda: Path(f"{marker}.ready").exists(), "leftover ready")
        subprocess.run(
            [PY, "-c", RECORD, str(tmp_path / ".devster"), str(proc.pid)],
            check=True,
            timeout=DEADLINE,
        )
    except BaseException:
        proc.kill()
        proc.wait(DEADLINE)
        raise
    return proc, marker


def _up(tmp_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PY, "-m", "devster_tui", "up", *extra, "-f", str(tmp_path / "devster.yaml")],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _reap(*procs: subprocess.Popen[bytes] | None) -> None:
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(DEADLINE)
        if proc is not None and proc.stderr is not None:
            proc.stderr.close()


def _event_types(tmp_path: Path) -> list[str]:
    events, _warnings = read_events(tmp_path / ".devster" / "events")
    return [event.type for event in events]


def _nothing_started(tmp_path: Path) -> None:
    assert not (tmp_path / "db.started").exists(), "db was started after the signal"
    assert not (tmp_path / "web.started").exists(), "web was started after the signal"
    types = _event_types(tmp_path)
    assert T.TASK_SPAWNED not in types, types
    assert types[-1] == T.ENGINE_STOPPED, types


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_before_engine_started_stops_instead_of_hanging(
    tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    _project(tmp_path)
    leftover, marker = _leftover(tmp_path)
    up = None
    try:
        up = _up(tmp_path, "--no-tui")
        _poll(marker.exists, "the engine's orphan cleanup sends the leftover SIGTERM")
        assert T.ENGINE_STARTED not in _event_types(tmp_path)
        up.send_signal(signum)
        try:
            assert up.wait(DEADLINE) == code
        except subprocess.TimeoutExpired:
            pytest.fail(f"devster up hung after {signum.name} before engine.started")
        _nothing_started(tmp_path)
    finally:
        _reap(up, leftover)


def test_sigterm_to_detached_engine_before_start_ends_up_d_promptly(tmp_path: Path) -> None:
    file = _project(tmp_path)
    leftover, marker = _leftover(tmp_path)
    up = None
    child = None
    try:
        up = _up(tmp_path, "-d")
        _poll(marker.exists, "the background engine's orphan cleanup reaches the leftover")
        directory = runtime_dir(file)
        _poll(lambda: read_lock_pid(directory) is not None, "background engine holds the lock")
        child = read_lock_pid(directory)
        assert child is not None and child != up.pid
        os.kill(child, signal.SIGTERM)
        try:
            assert up.wait(DEADLINE) == 1
        except subprocess.TimeoutExpired:
            pytest.fail("devster up -d waited for an engine that was told to stop")
        assert up.stderr is not None
        assert "exited with status 143" in up.stderr.read().decode()
        _poll(lambda: not Path(f"/proc/{child}").exists() or _zombie(child), "engine gone")
        _nothing_started(tmp_path)
    finally:
        if child is not None and Path(f"/proc/{child}").exists() and not _zombie(child):
            os.kill(child, signal.SIGKILL)
        _reap(up, leftover)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupting_up_d_before_it_returns_stops_the_background_engine(
    tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    file = _project(tmp_path)
    leftover, marker = _leftover(tmp_path)
    up = None
    child = None
    try:
        up = _up(tmp_path, "-d")
        _poll(marker.exists, "the background engine's orphan cleanup reaches the leftover")
        directory = runtime_dir(file)
        _poll(lambda: read_lock_pid(directory) is not None, "background engine holds the lock")
        child = read_lock_pid(directory)
        up.send_signal(signum)  # Ctrl-C (or SIGTERM) on the waiting devster up -d
        try:
            assert up.wait(DEADLINE) == code
        except subprocess.TimeoutExpired:
            pytest.fail(f"devster up -d did not return after {signum.name}")
        assert up.stderr is not None
        assert "stopping the background engine" in up.stderr.read().decode()
        assert child is not None
        _poll(lambda: _zombie(child), "the background engine ended")
        _nothing_started(tmp_path)
    finally:
        if child is not None and not _zombie(child):
            os.kill(child, signal.SIGKILL)
        _reap(up, leftover)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] in "ZX"


def test_sigterm_while_waiting_for_a_health_gated_dependency_stops(tmp_path: Path) -> None:
    _project(tmp_path, HEALTH_GATED)
    up = _up(tmp_path, "--no-tui")
    try:
        _poll((tmp_path / "db.started").exists, "db runs (web waits for it to be healthy)")
        up.send_signal(signal.SIGTERM)
        try:
            assert up.wait(DEADLINE) == 143
        except subprocess.TimeoutExpired:
            pytest.fail("devster up hung after SIGTERM while a dependent waited")
        assert not (tmp_path / "web.started").exists()
        events, _ = read_events(tmp_path / ".devster" / "events")
        web = [json.dumps(e.data) for e in events if e.task == "web" and e.type == T.TASK_SPAWNED]
        assert web == []
        assert events[-1].type == T.ENGINE_STOPPED
    finally:
        _reap(up)
