"""A command written as one string runs through one shell, named in one place."""

from __future__ import annotations

import ast
import socket
import subprocess
from pathlib import Path

from devster_tui.config.loader import load_project
from devster_tui.config.schema import Task
from devster_tui.config.shell import command_argv, shell_argv
from devster_tui.engine.supervisor import Engine
from devster_tui.state.commands import Command
from devster_tui.state.model import Status
from tests.helpers import async_wait_for, run, wait_state

PACKAGE = Path(__file__).resolve().parent.parent / "devster_tui"


def test_a_string_runs_through_sh_and_a_list_runs_as_is() -> None:
    assert shell_argv("echo $((1 + 2))") == ["/bin/sh", "-c", "echo $((1 + 2))"]
    assert command_argv("echo $((1 + 2))") == ["/bin/sh", "-c", "echo $((1 + 2))"]
    argv = ("printf", "%s", "$HOME")
    assert command_argv(argv) == ["printf", "%s", "$HOME"]
    done = subprocess.run(command_argv("echo $((1 + 2))"), capture_output=True, timeout=30)
    assert done.stdout == b"3\n"
    done = subprocess.run(command_argv(argv), capture_output=True, timeout=30)
    assert done.stdout == b"$HOME"


def test_a_tasks_argv_is_the_helpers() -> None:
    assert Task(cmd="make -j2").argv_or_shell == ["/bin/sh", "-c", "make -j2"]
    assert Task(cmd=["make", "-j2"]).argv_or_shell == ["make", "-j2"]
    assert Task().argv_or_shell == []


def test_only_the_shell_module_names_the_shell() -> None:
    # Tasks, probes, stop commands and secrets must not drift apart on how a string runs.
    naming = sorted(
        str(file.relative_to(PACKAGE))
        for file in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and node.value == "/bin/sh"
    )
    assert naming == ["config/shell.py"]


def test_a_stop_command_string_runs_through_sh_with_its_ports(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    file = tmp_path / "devster.yaml"
    file.write_text(
        "tasks:\n"
        "  svc:\n"
        '    cmd: "echo $$$$ > pid.tmp; mv pid.tmp pid; exec sleep 30"\n'
        f"    ports: {{http: {port}}}\n"
        "    stop:\n"
        '      command: "echo stop-${ports.http} > stopped; kill $$(cat pid)"\n'
        "      timeout: 20s\n",
        encoding="utf-8",
    )
    engine = Engine(load_project(file))

    async def body() -> None:
        await engine.start()
        try:
            await async_wait_for(lambda: (tmp_path / "pid").exists(), 15, what="the pid file")
            assert (await engine.execute(Command("stop", ("svc",)))).ok
            await wait_state(engine, lambda s: s.tasks["svc"].status is Status.STOPPED)
        finally:
            await engine.shutdown(force=True)

    run(body())
    assert (tmp_path / "stopped").read_text() == f"stop-{port}\n"
