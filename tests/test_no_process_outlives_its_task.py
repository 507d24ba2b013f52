"""No process outlives its task: setsid'd and double-forked processes, stop, down, kill -9.

Each scenario runs the real CLI (``devster up -d``, ``devster stop``, ``devster down``) on
tasks whose processes carry a unique marker in their command line (``sleep 300.NNNNNN``),
and looks for the marker in ``/proc`` afterwards.  Every scenario runs twice: with cgroup
v2 (what this machine offers) and with ``DEVSTER_CGROUPS=off`` (process groups, a child
subreaper and the escapee search in ``/proc``, as on a machine without cgroup v2).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devster_tui.executors.cgroup import own_cgroup
from devster_tui.executors.guard import end_cgroup, read_stat
from tests.helpers import devster_cli as devster
from tests.helpers import wait_for
from tests.test_api_support import runtime_env, write_project

HAS_CGROUP2 = own_cgroup() is not None and os.access(str((own_cgroup() or ("/",))[0]), os.W_OK)

MODES = [
    pytest.param(
        "cgroup",
        marks=pytest.mark.skipif(not HAS_CGROUP2, reason="no writable cgroup v2 here"),
    ),
    "fallback",
]


def marker() -> str:
    """A number no other test (or engineer) uses: ``300.<9 random digits>``."""
    return f"300.{random.randrange(10**8, 10**9)}"


def holders(mark: str) -> list[int]:
    """Live processes whose command line contains ``mark`` as an argument."""
    needle = b"\0" + mark.encode() + b"\0"
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = b"\0" + f.read()
        except OSError:
            continue
        stat = read_stat(int(name))
        if needle in cmdline and stat is not None and stat.alive:
            found.append(int(name))
    return found


def kill_all(marks: list[str]) -> None:
    for mark in marks:
        for pid in holders(mark):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def events(root: Path) -> list[dict[str, Any]]:
    """Every event of every engine run in the project's event log."""
    found = []
    for path in sorted((root / ".devster" / "events").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


class Project:
    """A project in ``tmp`` with marked tasks, run through the CLI."""

    def __init__(
        self,
        tmp: Path,
        env: dict[str, str],
        yaml: str,
        marks: list[str],
        cgroup: Path | None = None,
    ) -> None:
        self.root = tmp
        self.env = env
        self.marks = marks
        self.cgroup = cgroup
        write_project(tmp, yaml)

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        if self.cgroup is None:
            return devster(*args, cwd=self.root, env=self.env, timeout=timeout)
        # Started inside ``cgroup``: the engine's own cgroup is that one.
        enter = f'echo $$ > {self.cgroup / "cgroup.procs"} && exec "$@"'
        return subprocess.run(
            ["sh", "-c", enter, "sh", sys.executable, "-m", "devster_tui", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def up(self) -> int:
        """``devster up -d``; returns the engine's pid."""
        done = self.cli("up", "-d")
        assert done.returncode == 0, done.stderr
        found = re.search(r"\(pid (\d+)\)", done.stderr)
        assert found, done.stderr
        return int(found.group(1))

    def wait_running(self, *marks: str) -> None:
        for mark in marks or tuple(self.marks):

            def running(mark: str = mark) -> bool:
                return bool(holders(mark))

            wait_for(running, 15, what=f"a process with {mark}")

    def wait_none_left(self, within: float = 10) -> None:
        wait_for(
            lambda: not [m for m in self.marks if holders(m)],
            within,
            what="no process of any task left",
        )

    def killed(self) -> list[dict[str, Any]]:
        return [e for e in events(self.root) if e["type"] == "task.killed"]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def escaping(tmp_path: Path, mode: str) -> Iterator[tuple[Project, dict[str, str]]]:
    """Three tasks: one setsid's a child, one double-forks, one traps TERM."""
    names = ["setsid_child", "setsid_parent", "orphan", "forker", "stubborn", "stubborn_child"]
    marks = {name: marker() for name in names}
    m = marks
    keep = marker()
    yaml = f"""
    project: escapes
    tasks:
      setsid:
        cmd: "setsid sleep {m["setsid_child"]} & sleep {m["setsid_parent"]}"
      doublefork:
        cmd: "(sleep {m["orphan"]} &) ; sleep {m["forker"]}"
      stubborn:
        cmd: "trap '' TERM; sleep {m["stubborn_child"]} & while :; do sleep {m["stubborn"]}; done"
        stop: {{timeout: 500ms}}
      keep:  # keeps the engine up once the others are stopped
        cmd: [sleep, "{keep}"]
    """
    with runtime_env():
        env = dict(os.environ)
        if mode == "fallback":
            env["DEVSTER_CGROUPS"] = "off"
        project = Project(tmp_path, env, yaml, list(marks.values()))
        try:
            yield project, marks
        finally:
            project.cli("down", "--force", timeout=30)
            kill_all([*project.marks, keep])


def test_stop_ends_setsid_and_double_forked_processes_and_names_the_escapee(
    escaping: tuple[Project, dict[str, str]],
) -> None:
    project, marks = escaping
    project.up()
    project.wait_running()
    escapee = holders(marks["setsid_child"])
    done = project.cli("stop", "setsid", "doublefork", "stubborn")
    assert done.returncode == 0, done.stderr
    project.wait_none_left()
    killed = project.killed()
    named = {e["data"]["pid"] for e in killed if e["data"]["why"] == "escaped"}
    assert set(escapee) <= named, killed
    assert all(e["task"] == "setsid" for e in killed if e["data"]["pid"] in escapee)
    # The TERM-trapping shell needed SIGKILL after its 0.5 s: that is an event too.
    stubborn = [e for e in killed if e["task"] == "stubborn"]
    assert stubborn and all(e["data"]["signal"] == "SIGKILL" for e in stubborn), killed
    assert {e["data"]["why"] for e in stubborn} == {"stop timeout"}


def test_down_ends_every_process_of_every_task(escaping: tuple[Project, dict[str, str]]) -> None:
    project, _ = escaping
    project.up()
    project.wait_running()
    done = project.cli("down")
    assert done.returncode == 0, done.stderr
    project.wait_none_left()


def test_sigkill_of_the_engine_ends_every_process_of_every_task(
    escaping: tuple[Project, dict[str, str]],
) -> None:
    project, _ = escaping
    engine = project.up()
    project.wait_running()
    os.kill(engine, signal.SIGKILL)
    project.wait_none_left(5)
    # The next engine finds nothing left, and no cgroup of the dead engine stays.
    project.up()
    project.wait_running()
    assert not [e for e in events(project.root) if e["type"] == "orphan.killed"]
    if project.env.get("DEVSTER_CGROUPS") != "off":
        own = own_cgroup()
        assert own is not None
        assert not list(own[0].glob(f"devster-{engine}-*"))


def _guard_of(engine: int) -> int:
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = read_stat(int(name))
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if stat is not None and stat.ppid == engine and b"guard.py" in cmdline:
            return int(name)
    raise AssertionError("no guard process found")


@contextlib.contextmanager
def own_test_cgroup() -> Iterator[Path]:
    """A cgroup of this test's own for the engines it starts (like a systemd user scope).

    Every engine cleans up dead engines' subtrees in its own cgroup; engines that other
    tests start in the machine's root cgroup must not get to this test's first.
    """
    own = own_cgroup()
    assert own is not None
    path = own[0] / f"devster-test-{os.getpid()}-{random.randrange(10**9)}"
    path.mkdir()
    try:
        yield path
    finally:
        end_cgroup(str(path), 5.0)


@pytest.mark.skipif(not HAS_CGROUP2, reason="no writable cgroup v2 here")
def test_next_engine_ends_what_a_dead_engine_and_its_guard_left(tmp_path: Path) -> None:
    """kill -9 of the engine *and* its guard: the next ``up`` ends the dead subtree."""
    escapee, parent = marker(), marker()
    yaml = f"""
    project: leftovers
    tasks:
      setsid: {{cmd: "setsid sleep {escapee} & sleep {parent}"}}
    """
    with runtime_env(), own_test_cgroup() as cgroup:
        project = Project(tmp_path, dict(os.environ), yaml, [escapee, parent], cgroup)
        try:
            engine = project.up()
            project.wait_running()
            assert list(cgroup.glob(f"devster-{engine}-*"))  # the engine's subtree is there
            guard = _guard_of(engine)
            os.kill(guard, signal.SIGKILL)
            os.kill(engine, signal.SIGKILL)
            wait_for(lambda: read_stat(engine) is None, 5, what="the engine to be gone")
            left = holders(escapee) + holders(parent)
            assert len(left) == 2  # the escapee and the sleep: nobody is left to end them
            project.up()  # runs the same commands again: look for the old pids
            wait_for(
                lambda: not [pid for pid in left if read_stat(pid) is not None],
                10,
                what="the old run's processes to be ended",
            )
            leftover = [e for e in events(project.root) if e["type"] == "orphan.killed"]
            assert [e["task"] for e in leftover] == ["setsid"]
            assert not list(cgroup.glob(f"devster-{engine}-*"))  # and removed
        finally:
            project.cli("down", "--force", timeout=30)
            kill_all(project.marks)


SPAWN_TRIES = 20


def _kill_while_spawning(root: Path, env: dict[str, str], marks: list[str]) -> list[int]:
    """Start ``devster up``, SIGKILL it once k of its tasks run (k random); the leftovers."""
    k = random.randint(1, len(marks))
    engine = subprocess.Popen(
        [sys.executable, "-m", "devster_tui", "up", "--no-tui"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: sum(bool(holders(m)) for m in marks) >= k or engine.poll() is not None,
            30,
            what=f"{k} tasks to run",
        )
        time.sleep(random.uniform(0, 0.003))
    finally:
        engine.kill()
        engine.wait(10)
    try:
        wait_for(lambda: not [m for m in marks if holders(m)], 3, what="no task process")
    except AssertionError:
        return [pid for m in marks for pid in holders(m)]
    return []


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_sigkill_during_the_spawn_window_leaks_nothing(tmp_path: Path, mode: str) -> None:
    """kill -9 of ``devster up`` while its 8 tasks are being spawned, 20 times.

    The kill lands right after the k-th task process shows up in ``/proc`` (k random):
    exactly when a child may exist that the engine has not recorded yet.  Before the fix,
    4 of 5 such kills left a task running for good.
    """
    marks = [marker() for _ in range(8)]
    tasks = "\n".join(f"  t{i}: {{cmd: [sleep, '{mark}']}}" for i, mark in enumerate(marks))
    write_project(tmp_path, f"project: window\ntasks:\n{tasks}\n")
    leaks: list[list[int]] = []
    started = time.monotonic()
    with runtime_env():
        env = dict(os.environ)
        if mode == "fallback":
            env["DEVSTER_CGROUPS"] = "off"
        try:
            for _ in range(SPAWN_TRIES):
                assert time.monotonic() - started < 240, "the spawn-window test takes too long"
                left = _kill_while_spawning(tmp_path, env, marks)
                if left:
                    leaks.append(left)
                    kill_all(marks)
        finally:
            kill_all(marks)
    assert not leaks, f"task processes outlived a kill -9 in {len(leaks)} of {SPAWN_TRIES}"


@pytest.mark.parametrize("mode", MODES)
def test_exec_probe_in_flight_ends_with_its_task(tmp_path: Path, mode: str) -> None:
    """A probe far from its own timeout (60 s; the CLI alone may take seconds on a loaded
    machine) ends within 2 s of ``devster stop``, not at its timeout nor at ``down``."""
    probe, task = f"30.{random.randrange(10**8, 10**9)}", marker()
    yaml = f"""
    project: probes
    tasks:
      web:
        cmd: [sleep, "{task}"]
        health: {{exec: [sh, -c, "sleep {probe}"], timeout: 60s}}
      other: {{cmd: [sleep, "{marker()}"]}}  # keeps the engine up after web stops
    """
    with runtime_env():
        env = dict(os.environ)
        if mode == "fallback":
            env["DEVSTER_CGROUPS"] = "off"
        project = Project(tmp_path, env, yaml, [task, probe])
        try:
            project.up()
            project.wait_running(task, probe)
            done = project.cli("stop", "web")
            assert done.returncode == 0, done.stderr
            stopped = time.monotonic()
            project.wait_none_left(5)
            assert time.monotonic() - stopped < 2.0
        finally:
            project.cli("down", "--force", timeout=30)
            kill_all(project.marks)


def test_exec_probe_ends_at_its_own_timeout_while_the_task_runs(tmp_path: Path) -> None:
    probe, task = f"30.{random.randrange(10**8, 10**9)}", marker()
    yaml = f"""
    project: probes
    tasks:
      web:
        cmd: [sleep, "{task}"]
        health: {{exec: [sh, -c, "sleep {probe} & sleep {probe}"], timeout: 1s, interval: 60s}}
    """
    with runtime_env():
        project = Project(tmp_path, dict(os.environ), yaml, [task, probe])
        try:
            project.up()
            project.wait_running(probe)
            seen = time.monotonic()
            wait_for(lambda: not holders(probe), 5, what="the probe to end at its timeout")
            assert time.monotonic() - seen < 2.5
            assert holders(task)
        finally:
            project.cli("down", "--force", timeout=30)
            kill_all(project.marks)


@pytest.mark.parametrize("mode", MODES)
def test_closing_the_terminal_of_the_cockpit_ends_every_process(tmp_path: Path, mode: str) -> None:
    """The cockpit in a pseudo-terminal (``script``); the terminal goes away (SIGKILL of
    ``script`` closes the master side): the setsid'd process ends with the rest."""
    escapee, parent = marker(), marker()
    yaml = f"""
    project: hangup
    tasks:
      setsid: {{cmd: "setsid sleep {escapee} & sleep {parent}"}}
    """
    with runtime_env():
        env = dict(os.environ, TERM="xterm-256color", COLUMNS="100", LINES="30")
        if mode == "fallback":
            env["DEVSTER_CGROUPS"] = "off"
        project = Project(tmp_path, env, yaml, [escapee, parent])
        command = f"{sys.executable} -m devster_tui up"
        terminal = subprocess.Popen(
            ["script", "-qfec", command, "/dev/null"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            project.wait_running()
            terminal.kill()
            terminal.wait(10)
            project.wait_none_left(15)
        finally:
            terminal.kill()
            terminal.wait(10)
            project.cli("down", "--force", timeout=30)
            kill_all(project.marks)
