"""Closing the terminal of ``devster up`` stops every task gracefully, like Ctrl-C.

Regression (issue 12, item 10): closing the cockpit's terminal (tmux kill-session, the pty
master closed, a terminal window closed) was no graceful stop.  Textual's output thread hit
EIO on the vanished terminal and died, the loop then wedged on its full queue until the stall
watchdog ended devster, or devster died with ``OSError: [Errno 5]`` writing "stopping tasks…";
either way the guard SIGKILLed the tasks, their TERM traps never ran and the event log ended
with the engine still running.  A headless ``devster up --no-tui`` died of the SIGHUP itself.

Every case here runs the real CLI on a real terminal (tmux, or a pty whose slave is the
controlling terminal of a new session) with a task whose SIGTERM handler writes a file, and
checks what a user would: the trap ran, the event log ends with ``engine.stopping`` and
``engine.stopped``, devster exited 129 (128 + SIGHUP), its stderr (a file, because the terminal
is gone) holds no traceback, and no process carrying the task's unique marker is left.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devster_tui.state.eventlog import read_events
from tests.helpers.components import require_binary
from tests.test_api_support import runtime_env

pytestmark = [pytest.mark.slow]

EXIT_HANGUP = 128 + signal.SIGHUP
DEADLINE = 30.0
ROWS, COLUMNS = 36, 120

# The task: its SIGTERM handler writes the trap file, then exits 0 once the release file
# exists (at once when the test created it up front).
TASK = """\
import pathlib, signal, sys, time
trap, release = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
def stop(_signum, _frame):
    trap.write_text("trapped", "utf-8")
    deadline = time.monotonic() + 20
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("trap-armed", flush=True)
while True:
    time.sleep(1)
"""


@dataclass(frozen=True)
class Project:
    """A one-task project whose task traps SIGTERM."""

    root: Path
    trap: Path
    release: Path
    marker: str
    stderr: Path

    @property
    def file(self) -> Path:
        return self.root / "devster.yaml"

    def events(self) -> list[str]:
        events, _warnings = read_events(self.root / ".devster" / "events")
        return [e.type for e in events]

    def stopped_code(self) -> object:
        events, _warnings = read_events(self.root / ".devster" / "events")
        return next((e.data.get("exit_code") for e in events if e.type == "engine.stopped"), None)


@pytest.fixture(autouse=True)
def _private_runtime_dir() -> Iterator[None]:
    with runtime_env():
        yield


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "proj"
    root.mkdir()
    marker = f"devster-terminal-closed-{uuid.uuid4().hex}"
    made = Project(root, root / "trapped", root / "release", marker, tmp_path / "stderr.txt")
    made.release.touch()
    config = {
        "version": 1,
        "project": "hangup",
        "tasks": {
            "trapper": {
                "cmd": [sys.executable, "-c", TASK, str(made.trap), str(made.release), marker],
                "stop": {"signal": "SIGTERM", "timeout": "15s"},
            }
        },
    }
    made.file.write_text(json.dumps(config), "utf-8")  # JSON is YAML
    return made


def wait_for(cond: Callable[[], object], within: float, what: str, show: Callable[[], str]) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{show()}")
        time.sleep(0.05)  # polling interval of a deadline loop, not synchronisation


def marked_processes(marker: str) -> list[int]:
    """Processes whose command line carries ``marker`` (zombies have none)."""
    needle = marker.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:  # it ended while we looked
            continue
    return found


def assert_stopped_gracefully(project: Project, code: int | None) -> None:
    """What a graceful stop after a hangup leaves behind."""
    stderr = project.stderr.read_text("utf-8", "replace") if project.stderr.exists() else ""
    types = project.events()
    context = f"exit {code}\nevents: {types[-6:]}\nstderr:\n{stderr[-3000:]}"
    assert project.trap.read_text("utf-8") == "trapped", context
    assert types[-1] == "engine.stopped", context
    assert "engine.stopping" in types, context
    assert project.stopped_code() == EXIT_HANGUP, context
    assert code == EXIT_HANGUP, context
    for bad in ("Traceback", "Exception ignored", "Errno", "Error:"):
        assert bad not in stderr, context
    assert marked_processes(project.marker) == [], context


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "devster_tui", *args]


def terminal_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    return env


def _take_terminal() -> None:
    """In the child: make the pty slave (stdin) the controlling terminal of its session."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyRun:
    """``argv`` on a new pty in its own session, the slave as its controlling terminal
    (without ``controlling``, closing the terminal sends no SIGHUP: only I/O fails)."""

    def __init__(
        self, argv: list[str], cwd: Path, stderr: Path | None, *, controlling: bool = True
    ) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        err = open(stderr, "wb") if stderr is not None else None
        try:
            self.process = subprocess.Popen(
                argv,
                stdin=slave,
                stdout=slave,
                stderr=err if err is not None else slave,
                cwd=cwd,
                env=terminal_env(),
                start_new_session=True,
                preexec_fn=_take_terminal
                if controlling
                else None,  # the test process runs no threads
            )
        finally:
            os.close(slave)
            if err is not None:
                err.close()
        self.master: int | None = master
        self.seen = bytearray()

    def _read(self, timeout: float) -> bool:
        """Read what the terminal shows; False once no process holds the slave any more."""
        assert self.master is not None
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every slave descriptor is closed
            return False
        self.seen += data
        return bool(data)

    def read_until(self, needle: bytes, within: float = DEADLINE) -> None:
        deadline = time.monotonic() + within
        while needle not in self.seen:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"{needle!r} never shown; the terminal got:\n{self.tail()}")
            if not self._read(0.1):
                raise AssertionError(f"terminal closed before {needle!r}:\n{self.tail()}")

    def drain_until_exit(self, within: float = DEADLINE) -> int | None:
        """Keep reading (an open terminal) until the process exits."""
        deadline = time.monotonic() + within
        while self.process.poll() is None and time.monotonic() < deadline:
            if not self._read(0.1):
                break
        return self.wait(max(0.0, deadline - time.monotonic()))

    def close_terminal(self) -> None:
        if self.master is not None:
            os.close(self.master)
            self.master = None

    def wait(self, within: float = DEADLINE) -> int | None:
        try:
            return self.process.wait(within)
        except subprocess.TimeoutExpired:
            return None

    def tail(self) -> str:
        return bytes(self.seen[-2000:]).decode("utf-8", "replace")

    def kill(self) -> None:
        self.close_terminal()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def pty_runs() -> Iterator[list[PtyRun]]:
    runs: list[PtyRun] = []
    yield runs
    for run in runs:
        run.kill()


def start_on_pty(
    runs: list[PtyRun],
    project: Project,
    *extra: str,
    stderr: Path | None,
    controlling: bool = True,
) -> PtyRun:
    argv = cli("up", "-f", str(project.file), *extra)
    run = PtyRun(argv, project.root, stderr, controlling=controlling)
    runs.append(run)
    return run


# ---------------------------------------------------------------------- the cockpit


@pytest.mark.parametrize(
    ("stderr_to", "controlling"),
    [("file", True), ("terminal", True), ("file", False)],
    ids=["stderr-file", "stderr-terminal", "no-sighup"],
)
def test_closing_the_pty_of_the_cockpit_stops_the_tasks_gracefully(
    project: Project, pty_runs: list[PtyRun], stderr_to: str, controlling: bool
) -> None:
    """``no-sighup``: not the controlling terminal, so only the failing writes tell."""
    stderr = project.stderr if stderr_to == "file" else None
    run = start_on_pty(pty_runs, project, stderr=stderr, controlling=controlling)
    run.read_until(b"trap-armed")  # the cockpit is drawn, with the task's output in the log pane
    run.close_terminal()
    assert_stopped_gracefully(project, run.wait())


def test_sighup_with_the_terminal_open_stops_gracefully_and_restores_the_terminal(
    project: Project, pty_runs: list[PtyRun]
) -> None:
    run = start_on_pty(pty_runs, project, stderr=project.stderr)
    run.read_until(b"trap-armed")
    shown = len(run.seen)
    run.process.send_signal(signal.SIGHUP)
    code = run.drain_until_exit()
    assert_stopped_gracefully(project, code)
    after = bytes(run.seen[shown:])
    assert b"\x1b[?1049l" in after, run.tail()  # the alternate screen was left
    assert "devster: stopping tasks" in project.stderr.read_text("utf-8")


def test_tmux_kill_session_stops_the_tasks_gracefully(project: Project, tmp_path: Path) -> None:
    require_binary("tmux")
    sock = str(tmp_path / "t.sock")
    rc_file = project.root / "rc"
    # The shell catches SIGHUP (a caught signal is reset for the child, so devster gets
    # the default disposition) only to stay alive long enough to record devster's status.
    command = (
        f"cd {project.root} && trap 'true' HUP; "
        f"{' '.join(cli('up', '-f', str(project.file)))} 2>{project.stderr}; "
        f"echo $? > {rc_file}"
    )

    def tmux(*args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", sock, *args], capture_output=True, text=True, timeout=20, check=False
        )
        return done.stdout

    env = ["-e", "TERM=xterm-256color", "-e", f"XDG_RUNTIME_DIR={os.environ['XDG_RUNTIME_DIR']}"]
    size = ["-x", str(COLUMNS), "-y", str(ROWS)]
    tmux("new-session", "-d", "-s", "closing", *size, *env, command)
    try:
        wait_for(
            lambda: "trap-armed" in tmux("capture-pane", "-p", "-t", "closing"),
            DEADLINE,
            "the cockpit showing the task's output",
            lambda: tmux("capture-pane", "-p", "-t", "closing"),
        )
        tmux("kill-session", "-t", "closing")
        wait_for(
            lambda: rc_file.exists() and rc_file.read_text().strip(),
            DEADLINE,
            "devster to exit",
            lambda: f"events: {project.events()[-5:]}",
        )
        assert_stopped_gracefully(project, int(rc_file.read_text()))
    finally:
        tmux("kill-server")


# ---------------------------------------------------------------------- headless


def test_headless_on_a_closed_pty_stops_the_tasks_gracefully(
    project: Project, pty_runs: list[PtyRun]
) -> None:
    run = start_on_pty(pty_runs, project, "--no-tui", stderr=project.stderr)
    run.read_until(b"trap-armed")
    run.close_terminal()
    assert_stopped_gracefully(project, run.wait())


def test_a_second_sighup_does_not_kill_the_tasks(project: Project, pty_runs: list[PtyRun]) -> None:
    """A closed terminal window can bring two SIGHUPs (the kernel's and the shell's)."""
    project.release.unlink()  # the task's TERM handler now waits for the release file
    run = start_on_pty(pty_runs, project, "--no-tui", stderr=project.stderr)
    run.read_until(b"trap-armed")
    run.process.send_signal(signal.SIGHUP)
    wait_for(project.trap.exists, DEADLINE, "the task's TERM trap", run.tail)
    run.process.send_signal(signal.SIGHUP)
    # Once the engine has answered a client, it has handled the second SIGHUP too.
    ps = subprocess.run(
        cli("ps", "-f", str(project.file)), capture_output=True, timeout=DEADLINE, check=False
    )
    assert ps.returncode == 0, ps.stderr
    assert marked_processes(project.marker) != [], "the second SIGHUP killed the task"
    project.release.touch()
    assert_stopped_gracefully(project, run.drain_until_exit())
