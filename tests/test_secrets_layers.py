"""Secrets through the docker and ssh layers: the value reaches the remote process's
environment (and an ssh key's passphrase opens the key), but no command line on this machine
(containers and sshd sessions included: they share ``/proc``), no state file and no stored
output line ever holds it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from devster_tui.config.loader import load_project
from devster_tui.engine.secrets import with_secrets
from devster_tui.engine.supervisor import Engine
from devster_tui.state.model import Status
from tests.helpers.components import IMAGE, require_docker, require_sshd
from tests.helpers.sshd import start_sshd
from tests.test_secrets_e2e import CmdlineScanner

TOKEN = "layerS3cret-5d1e0b-KLM"
PASSPHRASE = "keyPassS3cret-8c2f-NOP"
NEEDLES = (TOKEN.encode(), PASSPHRASE.encode())


def _run_engine(file: Path, state: Path, task: str) -> tuple[Engine, list[str]]:
    loaded = with_secrets(
        load_project(file, environ={}), environ={"T_TOKEN": TOKEN, "T_PASS": PASSPHRASE}
    )

    async def main() -> tuple[Engine, list[str]]:
        engine = Engine(loaded, state_dir=state)
        try:
            await engine.start()
            await asyncio.wait_for(engine.wait_finished(), 90)
            lines = [line.text for line in engine.output.read(task, "both", 0, 100)]
        finally:
            await engine.shutdown()
            await engine.close()
        return engine, lines

    return asyncio.run(main())


def _assert_nothing_stored(state: Path) -> None:
    files = [p for p in state.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        assert not any(n in data for n in NEEDLES), path


@pytest.mark.docker
def test_a_secret_reaches_a_container_through_the_api_request_not_a_command_line(
    tmp_path: Path,
) -> None:
    require_docker()
    file = tmp_path / "devster.yaml"
    file.write_text(
        textwrap.dedent(
            f"""
            secrets:
              tok: {{env: T_TOKEN}}
            environments:
              box:
                layers: [{{docker: {{image: "{IMAGE}", env: {{LAYER_TOK: "${{secret:tok}}"}}}}}}]
            tasks:
              show:
                kind: job
                environment: box
                env: {{TOK: "${{secret:tok}}"}}
                cmd: [sh, -c, 'echo "task=$TOK layer=$LAYER_TOK"']
            """
        )
    )
    with CmdlineScanner() as scanner:
        engine, lines = _run_engine(file, tmp_path / "state", "show")
    task = engine.store.state.tasks["show"]
    assert task.status is Status.SUCCEEDED, (task.reason, lines)
    assert "task=[redacted:tok] layer=[redacted:tok]" in lines
    assert scanner.scans > 0 and scanner.hits == []
    _assert_nothing_stored(tmp_path / "state")
    inspect = subprocess.run(
        ["docker", "ps", "-a", "--no-trunc", "--format", "{{.Command}}"],
        capture_output=True,
        timeout=60,
    )
    assert TOKEN.encode() not in inspect.stdout


@pytest.mark.ssh
def test_a_secret_and_a_key_passphrase_travel_through_ssh_without_a_command_line(
    tmp_path: Path,
) -> None:
    require_sshd()
    key = tmp_path / "client_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ecdsa", "-m", "PEM", "-N", PASSPHRASE, "-f", str(key)],
        check=True,
        timeout=30,
    )
    server = start_sshd(tmp_path / "sshd", key)
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line)
    layer = {
        "host": "127.0.0.1",
        "port": server.port,
        "user": "root",
        "identity": str(key),
        "passphrase": "${secret:pass}",
        "known_hosts": str(known),
        "agent": False,
        "use_ssh_config": False,
    }
    file = tmp_path / "devster.yaml"
    file.write_text(
        textwrap.dedent(
            f"""
            secrets:
              tok: {{env: T_TOKEN}}
              pass: {{env: T_PASS}}
            environments:
              remote: {{layers: [{{ssh: {json.dumps(layer)}}}]}}
            tasks:
              show:
                kind: job
                environment: remote
                env: {{TOK: "${{secret:tok}}"}}
                cmd: [sh, -c, 'echo "remote=$TOK"; tr "\\0" " " < /proc/$$/cmdline; echo']
            """
        )
    )
    try:
        with CmdlineScanner() as scanner:
            engine, lines = _run_engine(file, tmp_path / "state", "show")
    finally:
        server.kill_all()
    task = engine.store.state.tasks["show"]
    assert task.status is Status.SUCCEEDED, (task.reason, lines)
    assert "remote=[redacted:tok]" in lines
    assert scanner.scans > 0 and scanner.hits == []
    _assert_nothing_stored(tmp_path / "state")
