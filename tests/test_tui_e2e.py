"""End to end: ``devster up`` on examples/quickstart in tmux (keys in, screen out, no leftovers)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from devster_tui.state.eventlog import read_events
from tests.helpers.components import require_binary

pytestmark = [pytest.mark.slow]


@pytest.fixture(autouse=True)
def _tmux_installed() -> None:
    """The end-to-end tests drive a real terminal: tmux (fail under CI=true without it)."""
    require_binary("tmux")


QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart"


def wait_for(
    cond: Callable[[], object], within: float, what: str, show: Callable[[], str] = str
) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{show()}")
        time.sleep(0.05)  # polling interval of a deadline loop, not synchronisation


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Tmux:
    def __init__(self, name: str, socket_dir: Path) -> None:
        self.name = name
        self.socket = str(socket_dir / "tmux.sock")

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        return done.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name)

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.name, *keys)

    def display(self, fmt: str) -> str:
        return self.run("display-message", "-p", "-t", self.name, fmt).strip()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns(".devster", "build"))
    config = root / "devster.yaml"
    port = str(free_port())
    config.write_text(config.read_text("utf-8").replace("8765", port), "utf-8")
    return root


@pytest.fixture
def tmux(tmp_path: Path, project: Path) -> Iterator[Tmux]:
    session = Tmux(f"devster-e2e-{os.getpid()}", tmp_path)
    command = (
        f"cd {project} && env -u COLUMNS -u LINES {sys.executable} -m devster_tui up; "
        "echo DEVSTER-EXITED-$?; sleep 30"
    )
    session.run(
        "new-session",
        "-d",
        "-s",
        session.name,
        "-x",
        "120",
        "-y",
        "36",
        "-e",
        "TERM=xterm-256color",
        command,
    )
    try:
        yield session
    finally:
        session.run("kill-server")


def spawned_pids(project: Path) -> set[int]:
    events, _ = read_events(project / ".devster" / "events")
    return {int(e.data["pid"]) for e in events if e.type == "task.spawned"}


def cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:  # a zombie or a process that just ended
        return []


def parent(process: psutil.Process) -> int | None:
    try:
        return process.ppid()
    except psutil.Error:  # it just ended
        return None


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_up_shows_tasks_restart_key_restarts_and_quit_leaves_no_process(
    tmux: Tmux, project: Path
) -> None:
    wait_for(lambda: "worker" in tmux.screen() and "healthy" in tmux.screen(), 60, "cockpit")
    screen = tmux.screen()
    for name in ("build", "server", "worker", "unit-tests", "integration-tests"):
        assert name in screen
    assert tmux.display("#{alternate_on}") == "1"
    tmux.keys("r")  # the first row is selected: build (a job); a re-run restarts server too
    wait_for(
        lambda: any(
            e.type == "command" and e.data.get("action") == "restart"
            for e in read_events(project / ".devster" / "events")[0]
        ),
        20,
        "the restart command in the event log",
    )
    wait_for(
        lambda: any(
            e.type == "task.starting" and e.task == "build" and e.data.get("run") == 2
            for e in read_events(project / ".devster" / "events")[0]
        ),
        20,
        "build run 2",
    )
    tmux.keys("q")
    wait_for(lambda: "DEVSTER-EXITED-0" in tmux.screen(), 60, "devster to exit", tmux.screen)
    assert tmux.display("#{alternate_on}") == "0"
    assert tmux.display("#{mouse_any_flag}") == "0"
    leftovers = [pid for pid in spawned_pids(project) if alive(pid)]
    assert leftovers == [], tmux.screen()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_restores_the_terminal_and_stops_the_tasks(
    tmux: Tmux, project: Path, signum: signal.Signals
) -> None:
    wait_for(lambda: "worker" in tmux.screen() and "running" in tmux.screen(), 60, "cockpit")
    shell = psutil.Process(int(tmux.display("#{pane_pid}")))
    candidates = [
        p for p in shell.children(recursive=True) if cmdline(p)[-3:] == ["-m", "devster_tui", "up"]
    ]
    # A child devster is spawning (a health probe) carries devster's command line until it
    # execs: the engine is the candidate whose parent is not a candidate.
    pids = {p.pid for p in candidates}
    devster = [p for p in candidates if parent(p) not in pids]
    assert len(devster) == 1, [cmdline(p) for p in shell.children(recursive=True)]
    devster[0].send_signal(signum)
    wait_for(lambda: "DEVSTER-EXITED-" in tmux.screen(), 60, "devster to exit", tmux.screen)
    assert tmux.display("#{alternate_on}") == "0"
    assert tmux.display("#{mouse_any_flag}") == "0"
    leftovers = [pid for pid in spawned_pids(project) if alive(pid)]
    assert leftovers == [], tmux.screen()
