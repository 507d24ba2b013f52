"""``devster up -d``: the engine in the background, returning once its tasks are started.

``devster up -d`` validates the project, starts ``devster up --no-tui`` in a new session
(output to ``STATE_DIR/engine.log``) and returns once the engine answers on its socket and
every task it started has left the waiting/starting phase (or failed).  The lock and the
API that the background engine holds are :mod:`devster_tui.commands.hosting`'s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from devster_tui.errors import DevsterError, ExitCode

if TYPE_CHECKING:
    from devster_tui.config.loader import LoadedProject

_NOT_STARTED = frozenset({"defined", "waiting", "starting"})


def add_detach_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``-d/--detach`` and ``--detach-timeout``."""
    parser.add_argument(
        "-d",
        "--detach",
        action="store_true",
        help="run the engine in the background and return once the tasks are started "
        "(then: devster ps, logs, attach, down)",
    )
    parser.add_argument(
        "--detach-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="with -d: how long to wait for the tasks to start (default: 60)",
    )


def _child_argv(args: argparse.Namespace, loaded: LoadedProject) -> list[str]:
    argv = [sys.executable, "-m", "devster_tui", "up", "--no-tui", "--background-engine"]
    argv += ["-f", str(loaded.file)]
    if args.no_deps:
        argv.append("--no-deps")
    for profile in args.profile:
        argv += ["--profile", profile]
    if args.api_port is not None:
        argv += ["--api-port", str(args.api_port), "--api-host", args.api_host]
    return [*argv, "--", *args.tasks]


def detach(args: argparse.Namespace, loaded: LoadedProject) -> int:
    """Start the engine in the background; return once its tasks are started.

    Raises:
        DevsterError: an engine already runs (``AlreadyRunning``, exit 5), the runtime
            directory is unsafe (exit 2), or the background engine did not come up (exit 1,
            or the engine's own 2 or 5).
    """
    from devster_tui.api.client import ApiError, Client, NoEngine
    from devster_tui.api.paths import acquire, socket_path

    acquire(loaded.file).release()
    state_dir = loaded.root / loaded.project.state_dir
    # ``.devster/other.yaml`` (a project file with another name): ``.devster`` is private too.
    state_dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    state_dir.mkdir(mode=0o700, exist_ok=True)
    log_path = state_dir / "engine.log"
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        child = subprocess.Popen(
            _child_argv(args, loaded),
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            start_new_session=True,
            cwd=os.getcwd(),
        )
    finally:
        os.close(fd)
    from devster_tui.api.client import Address

    client = Client(Address(socket=str(socket_path(loaded.file))), timeout=2.0)
    deadline = time.monotonic() + max(0.0, args.detach_timeout)
    health: dict[str, object] | None = None
    with _signals_caught() as caught:  # Ctrl-C / SIGTERM before it returns stop the engine
        while True:
            if caught:
                return _abort(child, caught)
            code = child.poll()
            if code is not None:
                passed_on = (ExitCode.CONFIG, ExitCode.ALREADY_RUNNING)
                raise DevsterError(
                    f"the background engine exited with status {code}; see {log_path}",
                    code if code in passed_on else ExitCode.FAILED,
                )
            try:
                health = client.json("GET", "/v1/health")
                if health.get("pid") == child.pid and _started(client, health):
                    break
            except (NoEngine, ApiError, OSError, ValueError):
                pass
            if time.monotonic() >= deadline:
                if health is None:
                    raise DevsterError(
                        f"the background engine did not answer; see {log_path}", ExitCode.FAILED
                    )
                sys.stderr.write("devster: some tasks are still waiting to start\n")
                break
            time.sleep(0.05)
    sys.stderr.write(
        f"devster: engine running in the background (pid {child.pid}); "
        f"devster ps | logs | attach | down\n"
    )
    return ExitCode.OK


@contextlib.contextmanager
def _signals_caught() -> Iterator[list[int]]:
    """Record SIGINT/SIGTERM while ``up -d`` waits for the engine, instead of dying."""
    import signal

    caught: list[int] = []

    def record(signum: int, _frame: object) -> None:
        caught.append(signum)

    previous = {s: signal.signal(s, record) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _abort(child: subprocess.Popen[bytes], caught: list[int]) -> int:
    """``up -d`` was interrupted before it returned: stop the background engine too.

    Returns:
        128 + the signal number (130 for Ctrl-C, 143 for SIGTERM).
    """
    import signal

    sys.stderr.write("devster: interrupted; stopping the background engine\n")
    first = caught[0]
    sent = 0
    with _signals_caught() as again:
        while child.poll() is None:
            if sent <= len(again):  # the first signal stops it, each further one forces
                child.send_signal(signal.SIGTERM)
                sent += 1
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(0.05)
    return ExitCode(128 + first)


def _started(client: object, health: dict[str, object]) -> bool:
    from devster_tui.api.client import Client

    assert isinstance(client, Client)
    if not health.get("running"):
        return False
    selected = health.get("selected")
    if not isinstance(selected, list):
        return False
    raw = client.json("GET", "/v1/state")
    tasks = {t["name"]: t["status"] for t in raw["state"]["tasks"]}
    return all(tasks.get(name) not in _NOT_STARTED for name in selected)
