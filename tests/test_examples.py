"""Every example loads, passes the JSON Schema editors use, and its programs really run."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from devster_tui.commands.schema import project_schema
from devster_tui.config.loader import load_project

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
YAML_EXAMPLES = sorted(EXAMPLES.glob("*/devster.yaml"))
PY_EXAMPLES = sorted(EXAMPLES.glob("*/devster.py"))
QUICKSTART = EXAMPLES / "quickstart"


def test_the_examples_folder_has_the_quickstart_and_python_config_examples() -> None:
    assert QUICKSTART / "devster.yaml" in YAML_EXAMPLES
    assert EXAMPLES / "python-config" / "devster.py" in PY_EXAMPLES


@pytest.mark.parametrize("file", YAML_EXAMPLES + PY_EXAMPLES, ids=lambda p: p.parent.name)
def test_example_loads_without_errors(file: Path) -> None:
    loaded = load_project(file, environ={})
    assert loaded.project.tasks


@pytest.mark.parametrize("file", YAML_EXAMPLES, ids=lambda p: p.parent.name)
def test_example_validates_against_the_exported_json_schema(file: Path) -> None:
    # Editors (yaml-language-server) see the plain YAML 1.2 data, before interpolation.
    data: Any = YAML(typ="safe", pure=True).load(file.read_text(encoding="utf-8"))
    schema = project_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: e.json_path
    )
    assert [f"{e.json_path}: {e.message}" for e in errors] == []


def test_json_schema_rejects_what_the_loader_rejects() -> None:
    # The schema check must be able to fail: an unknown key and a bad duration.
    schema = project_schema()
    bad = {"tasks": {"a": {"cmd": "x", "restart": {"policy": "no", "windw": "1m"}}}}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(bad))
    bad = {"tasks": {"a": {"cmd": "x", "timeout": "10 parsecs"}}}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(bad))


@pytest.mark.parametrize("folder", sorted({p.parent for p in YAML_EXAMPLES + PY_EXAMPLES}))
def test_every_example_has_a_readme(folder: Path) -> None:
    assert (folder / "README.md").is_file()


def test_python_config_example_generates_one_worker_per_queue() -> None:
    loaded = load_project(EXAMPLES / "python-config" / "devster.py", environ={"QUEUES": "a,b"})
    assert list(loaded.project.tasks) == ["producer", "worker-a", "worker-b"]
    loaded = load_project(
        EXAMPLES / "python-config" / "devster.py", environ={"QUEUES": "a", "WITH_STATS": "1"}
    )
    assert list(loaded.project.tasks) == ["producer", "worker-a", "stats"]
    assert list(loaded.project.observers) == ["every-5s"]


# ---------------------------------------------------------------------- quickstart programs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def _quickstart_argv(task: str, port: int) -> list[str]:
    """The task's argv as devster would run it, with python3 -> this interpreter."""
    project = load_project(QUICKSTART / "devster.yaml", environ={}).project
    argv = project.tasks[task].argv_or_shell
    argv = [a.replace("${ports.http}", str(port)) for a in argv]
    if argv[:2] == ["/bin/sh", "-c"]:
        return [argv[0], argv[1], argv[2].replace("python3 ", f"{sys.executable} ", 1)]
    return [sys.executable if a == "python3" else a for a in argv]


@contextmanager
def _server(cwd: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        _quickstart_argv("server", port),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    assert json.load(r) == {"status": "ok"}
                    break
            except OSError:
                assert proc.poll() is None, "server exited before it was healthy"
                assert time.monotonic() < deadline, "server not healthy within 15 s"
                time.sleep(0.05)  # poll interval, not synchronisation
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_quickstart_programs_build_test_serve_and_pass_integration_tests(tmp_path: Path) -> None:
    work = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, work, ignore=shutil.ignore_patterns("build", "__pycache__"))
    port = _free_port()
    assert "build done: 1 file(s)" in _run(_quickstart_argv("build", port), work)
    assert (work / "build" / "app.py").is_file()
    assert "Ran 3 tests" in _run(_quickstart_argv("unit-tests", port), work)
    url = {"APP_URL": f"http://127.0.0.1:{port}"}
    with _server(work, port) as server:
        out = _run(_quickstart_argv("integration-tests", port), work, url)
        assert "Ran 3 tests" in out
        assert "OK" in out
        worker = subprocess.Popen(
            _quickstart_argv("worker", port),
            cwd=work,
            env={**os.environ, **url, "WORKER_INTERVAL": "0.05"},
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert worker.stdout is not None
            assert worker.stdout.readline().startswith("job 1: Hello, job-1!")
        finally:
            worker.terminate()
            worker.wait(timeout=10)
        assert worker.returncode == 0
    assert server.returncode == 0
    assert server.stdout is not None
    assert "listening on" in server.stdout.read()


def test_quickstart_build_fails_on_a_syntax_error(tmp_path: Path) -> None:
    work = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, work, ignore=shutil.ignore_patterns("build", "__pycache__"))
    (work / "src" / "app.py").write_text("def broken(:\n", encoding="utf-8")
    result = subprocess.run(
        _quickstart_argv("build", 1), cwd=work, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "build failed: app.py:1" in result.stderr
