"""Host fan-out: one ``task@host`` instance per matching host, each with its own state."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import pytest

from devster_tui.config.loader import load_project
from devster_tui.config.schema import Project
from devster_tui.engine.fanout import expand_hosts, matching_hosts
from devster_tui.engine.supervisor import Engine
from devster_tui.state.model import Status
from tests.helpers.components import require_sshd
from tests.helpers.sshd import keygen, start_sshd


def inventory() -> Project:
    return Project.model_validate(
        {
            "hosts": {
                "web-1": {"ssh": {"host": "10.0.0.1"}, "labels": {"role": "web"}},
                "db-1": {"ssh": {"host": "10.0.0.2"}, "labels": {"role": "db"}},
                "web-2": {"ssh": {"host": "10.0.0.3"}, "labels": {"role": "web"}},
            },
            "tasks": {
                "logs": {"cmd": "tail -F x", "hosts": {"role": "web"}},
                "report": {"cmd": "true", "depends_on": ["logs"]},
            },
        }
    )


def test_label_selector_matches_only_hosts_with_every_label() -> None:
    project = inventory()
    assert matching_hosts(project.tasks["logs"], project.hosts) == ["web-1", "web-2"]


def test_fanned_out_task_becomes_one_instance_per_host_and_dependents_need_all() -> None:
    expanded, host_of = expand_hosts(inventory())
    assert list(expanded.tasks) == ["logs@web-1", "logs@web-2", "report"]
    assert host_of == {"logs@web-1": "web-1", "logs@web-2": "web-2"}
    assert set(expanded.tasks["report"].dependencies) == {"logs@web-1", "logs@web-2"}


@pytest.mark.ssh
def test_each_host_instance_runs_on_its_host_with_its_own_state(tmp_path: Path) -> None:
    require_sshd()
    key = keygen(tmp_path / "client_key")
    one = start_sshd(tmp_path / "one", key)
    two = start_sshd(tmp_path / "two", key)
    known = tmp_path / "known_hosts"
    known.write_text(one.known_hosts_line + two.known_hosts_line)
    try:
        hosts = {
            name: {
                "ssh": {
                    "host": "127.0.0.1",
                    "port": server.port,
                    "user": "root",
                    "identity": str(key),
                    "known_hosts": str(known),
                    "agent": False,
                    "use_ssh_config": False,
                },
                "labels": {"role": "web"},
            }
            for name, server in (("web-1", one), ("web-2", two))
        }
        file = tmp_path / "devster.yaml"
        file.write_text(
            textwrap.dedent(
                f"""
                version: 1
                hosts: {json.dumps(hosts)}
                tasks:
                  hello:
                    cmd: ["sh", "-c", "echo from $SSH_CONNECTION"]
                    kind: job
                    hosts: {{role: web}}
                """
            )
        )

        async def main() -> Engine:
            engine = Engine(load_project(file), state_dir=tmp_path / "state")
            await engine.start()
            await asyncio.wait_for(engine.wait_finished(), 60)
            await engine.shutdown()
            return engine

        engine = asyncio.run(main())
        state = engine.store.state
        assert set(state.tasks) == {"hello@web-1", "hello@web-2"}
        for name, server in (("hello@web-1", one), ("hello@web-2", two)):
            task = state.tasks[name]
            assert task.status is Status.SUCCEEDED, (task.reason, task.last_lines)
            assert task.host == name.partition("@")[2]
            assert task.last_lines[-1].endswith(f" {server.port}")
    finally:
        one.kill_all()
        two.kill_all()
