"""``devster graph`` end to end, in a subprocess: formats, config errors, discovery errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "quickstart" / "devster.yaml"


def _devster(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DEVSTER_FILE"}
    return subprocess.run(
        [sys.executable, "-m", "devster_tui", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_graph_json_of_the_quickstart_lists_tasks_and_the_three_edge_kinds() -> None:
    result = _devster("graph", "-f", str(QUICKSTART), "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["order"][0] == "build"
    assert [t["name"] for t in data["tasks"]] == [
        "build",
        "server",
        "worker",
        "unit-tests",
        "integration-tests",
    ]
    edges = {(e["from"], e["to"], e["kind"]) for e in data["edges"]}
    assert ("build", "server", "dependency") in edges
    assert ("go-integration", "integration-tests", "trigger") in edges
    assert ("sources", "unit-tests", "trigger") in edges


def test_graph_text_is_the_default_format(tmp_path: Path) -> None:
    (tmp_path / "devster.yaml").write_text(
        "tasks:\n  api: {cmd: serve}\n  errors: {cmd: grep ERROR, stdin: api.stderr}\n",
        encoding="utf-8",
    )
    result = _devster("graph", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        f"{tmp_path.name}: 2 tasks, 0 observers, 0 dependencies, 0 triggers, 1 pipe"
    )
    assert "errors  (service)  <= api.stderr" in result.stdout
    assert "  api.stderr -> errors" in result.stdout


@pytest.mark.parametrize(("fmt", "start"), [("mermaid", "flowchart LR"), ("dot", "digraph ")])
def test_graph_mermaid_and_dot_formats(fmt: str, start: str) -> None:
    result = _devster("graph", "-f", str(QUICKSTART), "--format", fmt)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(start)


def test_graph_of_an_invalid_file_prints_errors_like_validate_and_exits_2(tmp_path: Path) -> None:
    file = tmp_path / "devster.yaml"
    file.write_text("tasks:\n  a: {cmd: x, depends_on: [b]}\n  b: {cmd: y, depends_on: [a]}\n")
    result = _devster("graph", "-f", str(file))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{file}:2:28: tasks.a.depends_on[0]: dependency cycle: a -> b -> a "
        "(a -> b at 2:28, b -> a at 3:28)"
    ]


def test_graph_without_a_project_file_exits_2_and_says_where_it_looked(tmp_path: Path) -> None:
    result = _devster("graph", cwd=tmp_path)
    assert result.returncode == 2
    assert "no project file" in result.stderr


def test_graph_rejects_an_unknown_format() -> None:
    result = _devster("graph", "-f", str(QUICKSTART), "--format", "svg")
    assert result.returncode == 2
    assert "invalid choice: 'svg'" in result.stderr


def test_graph_names_the_broken_file_as_validate_does_not_by_its_absolute_path(
    tmp_path: Path,
) -> None:
    (tmp_path / "devster.yaml").write_text("version: 1\ntasks:\n  a: {cmd: 'true', kind: jobb}\n")
    graph = _devster("graph", cwd=tmp_path)
    validate = _devster("validate", cwd=tmp_path)
    assert graph.returncode == validate.returncode == 2
    assert graph.stderr == validate.stderr
    assert graph.stderr.startswith("devster.yaml:3:"), graph.stderr
