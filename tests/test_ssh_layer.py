"""The ssh layer and chains against real OpenSSH servers on 127.0.0.1 (and real Docker)."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devster_tui.config.loader import load_project
from devster_tui.config.schema import Layer, SshLayer
from devster_tui.engine.supervisor import Engine
from devster_tui.executors.base import ExitStatus, ProcessSpec, SpawnError
from devster_tui.executors.layered import ResumingExecutor, build_executor
from devster_tui.executors.local import LocalExecutor
from devster_tui.executors.ssh import SshExecutor, SshPool
from devster_tui.state.model import EngineState, Status
from tests.helpers.components import (
    LayerSink,
    require_sshd,
    scratch_container,
)
from tests.helpers.sshd import Sshd, keygen, start_sshd

pytestmark = pytest.mark.ssh

PRINTF = ["printf", "[%s]\n", "a b", "$(touch /tmp/pwned)", "'\"`;|&", "*", "é", ""]
EXPECTED = "[a b]\n[$(touch /tmp/pwned)]\n['\"`;|&]\n[*]\n[é]\n[]\n"


@dataclass
class Servers:
    bastion: Sshd
    app: Sshd
    client_key: Path
    known_hosts: Path
    root: Path

    def layer(self, server: Sshd, **extra: Any) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": server.port,
            "user": "root",
            "identity": str(self.client_key),
            "known_hosts": str(self.known_hosts),
            "agent": False,
            "use_ssh_config": False,
            "keepalive": "1s",
            **extra,
        }


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    require_sshd()
    key = keygen(tmp_path / "client_key")
    bastion = start_sshd(tmp_path / "bastion", key)
    app = start_sshd(tmp_path / "app", key, max_sessions=10)
    known = tmp_path / "known_hosts"
    known.write_text(bastion.known_hosts_line + app.known_hosts_line)
    yield Servers(bastion, app, key, known, tmp_path)
    bastion.kill_all()
    app.kill_all()


@pytest.fixture
def container() -> Iterator[str]:
    with scratch_container("devster-ssh") as name:
        yield name


Sink = LayerSink


async def until(predicate: Callable[[], bool], limit: float = 15.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "condition not met within the deadline"
        await asyncio.sleep(0.02)


def processes(pattern: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, timeout=10)
    return out.stdout.split()


def test_printf_through_ssh_ssh_docker_exec_prints_six_exact_lines(
    servers: Servers, container: str
) -> None:
    """The issue's quoting test, through the engine: a YAML environment of three layers."""
    marker = f"pwned-{uuid.uuid4().hex[:8]}"
    argv = [a.replace("pwned", marker) for a in PRINTF]
    expected = EXPECTED.replace("pwned", marker)
    file = servers.root / "devster.yaml"
    import json

    file.write_text(
        textwrap.dedent(
            f"""
            version: 1
            environments:
              prod:
                layers:
                  - ssh: {json.dumps(servers.layer(servers.bastion))}
                  - ssh: {json.dumps(servers.layer(servers.app))}
                  - docker: {{container: {container}}}
            tasks:
              quote:
                cmd: {json.dumps(argv)}
                kind: job
                environment: prod
                env: {{MULTI: "a\\nb $HOME"}}
            """
        )
    )

    async def main() -> EngineState:
        engine = Engine(load_project(file), state_dir=servers.root / "state")
        await engine.start()
        await asyncio.wait_for(engine.wait_finished(), 60)
        await engine.shutdown()
        return engine.store.state

    state = asyncio.run(main())
    task = state.tasks["quote"]
    assert task.status is Status.SUCCEEDED, (task.status, task.reason, task.last_lines)
    assert [f"{line}\n" for line in task.last_lines] == expected.splitlines(keepends=True)
    assert not os.path.exists(f"/tmp/{marker}")
    probe = subprocess.run(
        ["docker", "exec", container, "ls", f"/tmp/{marker}"], capture_output=True, timeout=30
    )
    assert probe.returncode != 0


def run_ssh(executor: Any, spec: ProcessSpec, limit: float = 30.0) -> tuple[ExitStatus, Sink]:
    async def main() -> tuple[ExitStatus, Sink]:
        sink = Sink()
        proc = await executor.spawn(spec, sink.out, sink.eof)
        return await asyncio.wait_for(proc.wait(), limit), sink

    return asyncio.run(main())


def test_unknown_host_key_fails_hard_naming_host_and_fingerprint(servers: Servers) -> None:
    servers.known_hosts.write_text(servers.bastion.known_hosts_line)  # app is unknown

    async def main() -> str:
        pool = SshPool()
        executor = SshExecutor([SshLayer(**servers.layer(servers.app))], pool)
        try:
            await executor.spawn(
                ProcessSpec(task="t", argv=["true"], env={}, cwd="/"), Sink().out, Sink().eof
            )
        except SpawnError as exc:
            return str(exc)
        finally:
            await pool.aclose()
        raise AssertionError("connected to a host with an unknown key")

    message = asyncio.run(main())
    fingerprint = subprocess.run(
        ["ssh-keygen", "-lf", str(servers.app.host_key.with_suffix(".pub"))],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.split()[1]
    assert "unknown" in message and "127.0.0.1" in message and fingerprint in message


def test_changed_host_key_fails_hard_as_changed(servers: Servers) -> None:
    other = keygen(servers.root / "other_host_key")
    pub = other.with_suffix(".pub").read_text().split()
    servers.known_hosts.write_text(f"[127.0.0.1]:{servers.app.port} {pub[0]} {pub[1]}\n")

    async def main() -> str:
        pool = SshPool()
        executor = SshExecutor([SshLayer(**servers.layer(servers.app))], pool)
        try:
            await executor.spawn(
                ProcessSpec(task="t", argv=["true"], env={}, cwd="/"), Sink().out, Sink().eof
            )
        except SpawnError as exc:
            return str(exc)
        finally:
            await pool.aclose()
        raise AssertionError("connected to a host whose key changed")

    assert "CHANGED" in asyncio.run(main())


def test_host_key_checking_off_is_warned_on_every_connect(servers: Servers) -> None:
    servers.known_hosts.write_text("")

    async def main() -> Sink:
        sink = Sink()
        pool = SshPool(notice=sink.notice)
        layer = SshLayer(**servers.layer(servers.app, host_key_check="off"))
        proc = await SshExecutor([layer], pool).spawn(
            ProcessSpec(task="t", argv=["true"], env={}, cwd="/"), sink.out, sink.eof
        )
        await asyncio.wait_for(proc.wait(), 30)
        await pool.aclose()
        return sink

    sink = asyncio.run(main())
    assert any(state == "warning" and "OFF" in text for _t, state, text in sink.notices)


def test_fifteen_tasks_on_one_host_all_start_despite_max_sessions_10(servers: Servers) -> None:
    async def main() -> tuple[list[ExitStatus], int]:
        pool = SshPool()
        executor = SshExecutor([SshLayer(**servers.layer(servers.app))], pool)
        sinks = [Sink() for _ in range(15)]
        procs = [
            await executor.spawn(
                ProcessSpec(task=f"t{i}", argv=["sh", "-c", "echo up; sleep 300"], env={}, cwd="/"),
                sinks[i].out,
                sinks[i].eof,
            )
            for i in range(15)
        ]
        await until(lambda: all(bytes(s.data["stdout"]) == b"up\n" for s in sinks), 30)
        connections = pool.connections()
        statuses = await asyncio.gather(*(p.stop(15, 2.0) for p in procs))
        await pool.aclose()
        return list(statuses), connections

    statuses, connections = asyncio.run(main())
    assert connections == 2
    assert all(s.signal == 15 for s in statuses)


def test_jump_host_chain_runs_argv_exactly(servers: Servers) -> None:
    layers = [
        Layer(ssh=SshLayer(**servers.layer(servers.bastion))),
        Layer(ssh=SshLayer(**servers.layer(servers.app))),
    ]

    async def main() -> tuple[ExitStatus, Sink]:
        pool = SshPool()
        executor = build_executor(
            layers, local=LocalExecutor(guard=False), pool=pool, project="p", root=servers.root
        )
        sink = Sink()
        proc = await executor.spawn(
            ProcessSpec(task="t", argv=PRINTF, env={}, cwd="/"), sink.out, sink.eof
        )
        status = await asyncio.wait_for(proc.wait(), 30)
        await pool.aclose()
        return status, sink

    status, sink = asyncio.run(main())
    assert status == ExitStatus(0, None)
    assert sink.data["stdout"].decode() == EXPECTED


def test_dropped_link_ends_the_remote_group_and_a_follow_task_resumes_once(
    servers: Servers,
) -> None:
    """sshd dies under a running tail: the remote group ends on its own, devster reconnects
    with backoff once sshd is back, exactly one instance runs, and no line repeats."""
    logfile = servers.root / "app.log"
    logfile.write_text("".join(f"old {i}\n" for i in range(5)))
    tag = f"devster-follow-{uuid.uuid4().hex[:8]}"

    async def main() -> tuple[Sink, list[str]]:
        sink = Sink()
        pool = SshPool(notice=sink.notice)
        inner = SshExecutor([SshLayer(**servers.layer(servers.app))], pool, notice=sink.notice)
        executor = ResumingExecutor(inner, notice=sink.notice, initial=0.2)
        spec = ProcessSpec(
            task="follow",
            argv=["sh", "-c", f': {tag}; exec tail -n 3 -F "$0"', str(logfile)],
            env={},
            cwd="/",
        )
        proc = await executor.spawn(spec, sink.out, sink.eof)
        await until(lambda: sink.data["stdout"].count(b"\n") == 3)
        await asyncio.to_thread(servers.app.kill_all)
        await until(lambda: any(s == "disconnected" for _t, s, _d in sink.notices))
        await until(lambda: not processes(tag), 10)  # remote cleanup without devster
        with logfile.open("a") as f:
            f.write("new 1\n")
        await asyncio.to_thread(servers.app.start)
        await until(lambda: any(s == "connected" for _t, s, _d in sink.notices), 30)
        await until(lambda: b"new 1\n" in sink.data["stdout"])
        with logfile.open("a") as f:
            f.write("new 2\n")
        await until(lambda: b"new 2\n" in sink.data["stdout"])
        running = processes(tag)
        await proc.stop(15, 2.0)
        await pool.aclose()
        return sink, running

    sink, running = asyncio.run(main())
    lines = sink.data["stdout"].decode().splitlines()
    assert lines == ["old 2", "old 3", "old 4", "new 1", "new 2"]
    assert len([p for p in running if p]) >= 1
    assert not processes(tag)


def test_accept_new_creates_an_owner_only_known_hosts(tmp_path: Path) -> None:
    """Pins: accept-new creating ~/.ssh and known_hosts with the umask's (wide) modes."""
    from devster_tui.executors.ssh import _append_known_host

    old = os.umask(0)
    try:
        path = tmp_path / "home" / ".ssh" / "known_hosts"
        _append_known_host(str(path), "[127.0.0.1]:2222 ssh-ed25519 AAAA\n")
        _append_known_host(str(path), "[127.0.0.1]:2223 ssh-ed25519 BBBB\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().splitlines() == [
        "[127.0.0.1]:2222 ssh-ed25519 AAAA",
        "[127.0.0.1]:2223 ssh-ed25519 BBBB",
    ]
