"""`devster init`: a starter devster.yaml that validates, runs, and is never written twice.

From the user's side: the real CLI in a temporary directory, then ``devster validate``,
``devster run smoke`` and a detached engine driven with ``trigger``, ``wait`` and a file
change, checking that the file does what its comments promise.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devster_tui.config.loader import load_project
from tests.helpers import devster_cli, wait_for
from tests.test_api_support import runtime_env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVSTER_")}
    return {**env, **extra}


def _init(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return devster_cli("init", *args, cwd=cwd, env=_env())


def test_init_writes_a_valid_file_named_after_the_directory(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    folder.mkdir()
    result = _init(folder)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote devster.yaml (project shop):\n")
    assert "next:\n  devster validate " in result.stdout
    assert "  devster run smoke " in result.stdout
    validated = devster_cli("validate", cwd=folder, env=_env())
    assert validated.returncode == 0, validated.stderr
    assert validated.stdout == "devster.yaml: valid: 3 tasks, 2 observers, 0 environments\n"
    assert load_project(folder / "devster.yaml", environ={}).project.project == "shop"


def test_the_starter_shows_the_main_concepts(tmp_path: Path) -> None:
    assert _init(tmp_path).returncode == 0
    text = (tmp_path / "devster.yaml").read_text()
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) >= 15
    project = load_project(tmp_path / "devster.yaml", environ={}).project
    build, server, smoke = (project.tasks[n] for n in ("build", "server", "smoke"))
    # A job re-run by a file observer.
    assert build.kind == "job" and build.triggers == ["sources"]
    assert project.observers["sources"].files is not None
    # A service with a dependency, a health check and a restart policy.
    assert server.kind == "service"
    assert server.dependencies["build"].condition == "succeeded"
    assert server.health is not None and server.health.http is not None
    assert server.restart.policy == "on-failure"
    # A test behind a manual gate, waiting for the healthy service.
    assert smoke.kind == "job" and smoke.triggers == ["go"]
    assert project.observers["go"].manual is not None
    assert smoke.dependencies["server"].condition == "healthy"


def test_init_refuses_to_overwrite_and_leaves_the_file_untouched(tmp_path: Path) -> None:
    file = tmp_path / "devster.yaml"
    file.write_text("tasks: {mine: {cmd: 'true'}}\n")
    result = _init(tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == "devster init: devster.yaml already exists; nothing written\n"
    assert file.read_text() == "tasks: {mine: {cmd: 'true'}}\n"


@pytest.mark.parametrize("existing", ["devster.yml", "devster.py"])
def test_init_refuses_next_to_another_project_file(tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).write_text("")
    result = _init(tmp_path)
    assert result.returncode == 2
    assert result.stderr == f"devster init: {existing} already exists; nothing written\n"
    assert not (tmp_path / "devster.yaml").exists()


def test_init_dash_f_creates_the_directory_and_says_how_to_use_it(tmp_path: Path) -> None:
    result = _init(tmp_path, "-f", "apps/web")
    assert result.returncode == 0, result.stderr
    assert "wrote apps/web/devster.yaml (project web):" in result.stdout
    assert "  devster run -f apps/web smoke " in result.stdout
    validated = devster_cli("validate", "-f", "apps/web", cwd=tmp_path, env=_env())
    assert validated.returncode == 0, validated.stderr
    again = _init(tmp_path, "-f", "apps/web")
    assert again.returncode == 2 and len(again.stderr.splitlines()) == 1


def test_init_dash_f_with_a_yaml_name_writes_that_file(tmp_path: Path) -> None:
    result = _init(tmp_path, "-f", "ci.yaml")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ci.yaml").is_file() and not (tmp_path / "devster.yaml").exists()
    assert devster_cli("validate", "-f", "ci.yaml", cwd=tmp_path, env=_env()).returncode == 0


@pytest.mark.parametrize("name", ["my app", "null", "2024", "true"])
def test_a_directory_name_yaml_would_misread_stays_the_project_name(
    tmp_path: Path, name: str
) -> None:
    folder = tmp_path / name
    folder.mkdir()
    assert _init(folder).returncode == 0
    assert load_project(folder / "devster.yaml", environ={}).project.project == name


def test_run_smoke_builds_serves_tests_and_stops(tmp_path: Path) -> None:
    assert _init(tmp_path).returncode == 0
    port = _free_port()
    result = devster_cli("run", "smoke", cwd=tmp_path, env=_env(HTTP_PORT=str(port)), timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"port {port}" in out
    assert "server  * healthy" in out
    assert "smoke   | <h1>built " in out
    assert "smoke   * succeeded" in out
    assert "server  * stopped" in out
    assert (tmp_path / "build" / "index.html").read_text().startswith("<h1>built ")


def _tasks(cwd: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    result = devster_cli("ps", "--json", cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    return {t["name"]: t for t in json.loads(result.stdout)["tasks"]}


def test_the_gate_and_the_file_trigger_work_as_the_comments_say(tmp_path: Path) -> None:
    """`devster trigger go` runs the gated smoke test; a change in src/ re-runs the build,
    which restarts the server."""
    assert _init(tmp_path).returncode == 0
    (tmp_path / "src").mkdir()  # so that the change below is one file event, not two
    with runtime_env():
        env = _env(HTTP_PORT=str(_free_port()))
        started = devster_cli("up", "-d", cwd=tmp_path, env=env, timeout=90)
        assert started.returncode == 0, started.stderr
        try:
            wait_for(
                lambda: _tasks(tmp_path, env)["smoke"]["status"] == "gated",
                timeout=30,
                what="smoke to wait at its gate",
            )
            assert devster_cli("trigger", "go", cwd=tmp_path, env=env).returncode == 0
            waited = devster_cli(
                "wait", "smoke", "--for", "succeeded", "--timeout", "60", cwd=tmp_path, env=env
            )
            assert waited.returncode == 0, waited.stderr
            (tmp_path / "src" / "page.txt").write_text("changed\n")
            wait_for(
                lambda: _tasks(tmp_path, env)["server"]["run"] >= 2,
                timeout=30,
                what="the build to re-run and the server to restart",
            )
            assert _tasks(tmp_path, env)["build"]["run"] >= 2
        finally:
            down = devster_cli("down", "--force", cwd=tmp_path, env=env)
            assert down.returncode == 0, down.stderr
