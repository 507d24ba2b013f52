"""Issue 12's smaller items, each as a user meets it: a wrong name, a hostile request, a
runtime directory that is not ours, a profile, two project files in one directory, and what
devster says and exits with then.

Real CLI (``python -m devster_tui``), real engines (``devster up -d``), real sockets.  Every
test here failed before the change it is named after.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from devster_tui.api.paths import socket_path
from devster_tui.errors import ExitCode
from devster_tui.state.eventlog import read_events
from tests.helpers import devster_cli
from tests.test_api_support import PY, runtime_env, write_project

DOCS = Path(__file__).resolve().parent.parent / "docs"

SERVICES = """
tasks:
  web: {cmd: [PY, -c, "import time\\nprint('web up', flush=True)\\ntime.sleep(300)"]}
  db: {cmd: [PY, -c, "import time\\nprint('db up', flush=True)\\ntime.sleep(300)"]}
"""


def cli(tmp: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return devster_cli(*args, cwd=tmp, env=env, timeout=90)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The single ``devster: ...`` line a failed command printed (asserting it is single)."""
    lines = done.stderr.splitlines()
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1 and lines[0].startswith("devster: "), done.stderr
    return lines[0]


@contextlib.contextmanager
def detached(tmp: Path, yaml: str) -> Iterator[dict[str, str]]:
    """``devster up -d`` on ``yaml`` in ``tmp`` (private runtime dir); down afterwards."""
    with runtime_env():
        env = dict(os.environ)
        write_project(tmp, yaml)
        started = cli(tmp, env, "up", "-d")
        assert started.returncode == 0, started.stdout + started.stderr
        try:
            yield env
        finally:
            cli(tmp, env, "down", "--force")


# -- item 1: one error path, one line, no traceback --------------------------------------


def test_item1_errors_are_one_devster_line_without_a_traceback(tmp_path: Path) -> None:
    write_project(tmp_path, SERVICES)
    with runtime_env():
        env = dict(os.environ)
        for args in (("ps",), ("restart", "web"), ("attach",), ("web",)):
            done = cli(tmp_path, env, *args)
            if args == ("web",) and "needs the web extra" in done.stderr:
                continue
            assert done.returncode == ExitCode.NO_ENGINE, (args, done.stderr)
            assert "no engine is running for this project" in one_line_error(done)
    # An OSError devster cannot recover from is one line naming the path, not a traceback.
    (tmp_path / "taken").write_text("a file where the state directory should be\n")
    write_project(tmp_path, "state_dir: taken\n" + SERVICES)
    with runtime_env():
        done = cli(tmp_path, dict(os.environ), "up", "--no-tui", "--exit-when-done")
    assert done.returncode == ExitCode.FAILED, done.stderr
    assert str(tmp_path / "taken") in one_line_error(done)


# -- item 2: one exit-code table ---------------------------------------------------------


def _documented_codes() -> list[tuple[int, str]]:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    tables = re.findall(r"^\| *code *\|.*$", text, re.M)
    assert len(tables) == 1, f"docs/cli.md has {len(tables)} exit-code tables: {tables}"
    section = text.split("\n## Exit status\n", 1)[1].split("\n## ", 1)[0]
    return [
        (int(m.group(1)), m.group(2))
        for m in re.finditer(r"^\| *(\d+) *\| *`([A-Z_]+)` *\|", section, re.M)
    ]


def test_item2_docs_cli_has_one_exit_code_table_and_it_is_the_enum() -> None:
    documented = _documented_codes()
    assert documented == [(code.value, code.name) for code in ExitCode]


def test_item2_already_running_and_no_engine_have_different_codes(tmp_path: Path) -> None:
    with detached(tmp_path, SERVICES) as env:
        again = cli(tmp_path, env, "up", "--no-tui")
        assert again.returncode == ExitCode.ALREADY_RUNNING.value == 5, again.stderr
        assert "already running (pid" in one_line_error(again)
        detached_again = cli(tmp_path, env, "up", "-d")
        assert detached_again.returncode == ExitCode.ALREADY_RUNNING, detached_again.stderr
    with runtime_env():
        nothing = cli(tmp_path, dict(os.environ), "ps")
    assert nothing.returncode == ExitCode.NO_ENGINE.value == 3, nothing.stderr


# -- item 3: an unknown task name gets a did-you-mean ------------------------------------


def test_item3_up_and_run_of_a_misspelt_task_suggest_the_name_and_exit_2(tmp_path: Path) -> None:
    write_project(tmp_path, SERVICES)
    with runtime_env():
        env = dict(os.environ)
        for command in ("up", "run"):
            args = (command, "--no-tui", "wbe") if command == "up" else (command, "wbe")
            done = cli(tmp_path, env, *args)
            assert done.returncode == ExitCode.CONFIG, (command, done.stderr)
            assert one_line_error(done) == "devster: no such task: wbe; did you mean 'web'?"
        several = cli(tmp_path, env, "up", "--no-tui", "wbe", "zzz")
        assert one_line_error(several) == (
            "devster: no such task: wbe (did you mean 'web'?), zzz; known tasks: web, db"
        )


def test_item3_client_commands_of_a_misspelt_task_suggest_the_name_and_exit_2(
    tmp_path: Path,
) -> None:
    with detached(tmp_path, SERVICES) as env:
        for args in (
            ("stop", "wbe"),
            ("start", "wbe"),
            ("restart", "wbe"),
            ("trigger", "wbe"),
            ("logs", "wbe"),
            ("wait", "wbe"),
        ):
            done = cli(tmp_path, env, *args)
            assert done.returncode == ExitCode.CONFIG, (args, done.stderr)
            assert one_line_error(done).endswith("task: wbe; did you mean 'web'?"), args
        assert "web up" in cli(tmp_path, env, "logs", "web").stdout


# -- item 4: hostile request bodies ------------------------------------------------------


def _raw_post(path: Path, body: bytes, *, declared: int | None = None) -> int:
    """POST ``body`` to /v1/commands over the Unix socket; the answer's HTTP status."""
    length = len(body) if declared is None else declared
    head = (
        "POST /v1/commands HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(15)
        sock.connect(str(path))
        sock.sendall(head)
        with contextlib.suppress(OSError):  # the server may answer before reading it all
            sock.sendall(body)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(65536)
            assert chunk, f"the engine closed the connection without an answer: {answer!r}"
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_item4_deeply_nested_or_huge_json_is_refused_and_the_engine_keeps_serving(
    tmp_path: Path,
) -> None:
    with detached(tmp_path, SERVICES) as env:
        sock = socket_path(tmp_path / "devster.yaml")
        assert _raw_post(sock, b"[" * 100_000) == 400
        assert _raw_post(sock, b'{"action": "stop", "tasks": ' + b"[" * 50_000) == 400
        assert _raw_post(sock, b"[" * 65536, declared=2 * 1024 * 1024) == 413
        ps = cli(tmp_path, env, "ps", "--json")
        assert ps.returncode == 0, ps.stderr
        tasks = {t["name"]: t["status"] for t in json.loads(ps.stdout)["tasks"]}
        assert tasks == {"web": "running", "db": "running"}


# -- item 5: a runtime directory that belongs to someone else ----------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_item5_a_runtime_dir_owned_by_another_user_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    write_project(tmp_path, SERVICES)
    foreign = Path(tempfile.mkdtemp(prefix="dvf"))
    try:
        os.chown(foreign, 65534, 65534)
        env = {**os.environ, "XDG_RUNTIME_DIR": str(foreign)}
        for args in (("up", "-d"), ("up", "--no-tui")):
            done = cli(tmp_path, env, *args)
            assert done.returncode == ExitCode.CONFIG, (args, done.stderr)
            line = one_line_error(done)
            assert str(foreign) in line and "another user" in line, line
        assert not (foreign / "devster").exists()
    finally:
        # Where the refusal regressed, `up -d` left an engine running: end it.
        cli(tmp_path, {**os.environ, "XDG_RUNTIME_DIR": str(foreign)}, "down", "--force")
        shutil.rmtree(foreign, ignore_errors=True)


# -- item 6: devster graph --profile -----------------------------------------------------


def test_item6_graph_shows_only_the_tasks_of_the_active_profiles(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        """
        tasks:
          api: {cmd: "true"}
          profiler: {cmd: "true", profiles: [debug], depends_on: [api]}
          seeder: {cmd: "true", kind: job, profiles: [demo]}
        """,
    )
    env = dict(os.environ)

    def graph_tasks(*profiles: str) -> list[str]:
        args = [arg for name in profiles for arg in ("--profile", name)]
        done = cli(tmp_path, env, "graph", "--format", "json", *args)
        assert done.returncode == 0, done.stderr
        return [task["name"] for task in json.loads(done.stdout)["tasks"]]

    assert graph_tasks() == ["api"]
    assert graph_tasks("debug") == ["api", "profiler"]
    assert graph_tasks("debug", "demo") == ["api", "profiler", "seeder"]
    text = cli(tmp_path, env, "graph").stdout
    assert "api" in text and "profiler" not in text and "seeder" not in text


# -- item 7: two project files in one directory ------------------------------------------


def _event_tasks(directory: Path) -> set[str]:
    events, _warnings = read_events(directory / "events")
    return {event.task for event in events if event.task is not None}


def test_item7_two_project_files_in_one_directory_keep_their_own_state(tmp_path: Path) -> None:
    other = """
    tasks:
      worker: {cmd: [PY, -c, "import time\\nprint('worker up', flush=True)\\ntime.sleep(300)"]}
    """
    (tmp_path / "other.yaml").write_text(textwrap.dedent(other).replace("PY", PY))
    with detached(tmp_path, SERVICES) as env:
        assert socket_path(tmp_path / "other.yaml") != socket_path(tmp_path / "devster.yaml")
        started = cli(tmp_path, env, "up", "-d", "-f", "other.yaml")
        assert started.returncode == 0, started.stderr
        try:
            mine = json.loads(cli(tmp_path, env, "ps", "--json").stdout)["tasks"]
            theirs = json.loads(cli(tmp_path, env, "ps", "--json", "-f", "other.yaml").stdout)
            assert {t["name"] for t in mine} == {"web", "db"}
            assert [t["name"] for t in theirs["tasks"]] == ["worker"]
        finally:
            cli(tmp_path, env, "down", "--force", "-f", "other.yaml")
    default_dir = tmp_path / ".devster"
    other_dir = default_dir / "other.yaml"
    assert _event_tasks(default_dir) == {"web", "db"}
    assert _event_tasks(other_dir) == {"worker"}
    assert {p.name.split(".")[0] for p in (default_dir / "logs").glob("*.log")} == {"web", "db"}
    assert (other_dir / "logs" / "worker.stdout.log").read_text() == "worker up\n"
    assert "worker" not in (default_dir / "engine.log").read_text()
    assert "worker up" in (other_dir / "engine.log").read_text()
