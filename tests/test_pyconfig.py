"""Tests of ``devster.py`` project files: building the model in Python, errors with lines."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from devster_tui.config.errors import ConfigErrors
from devster_tui.config.loader import load_project
from devster_tui.config.pyconfig import load_python_project


def _write(tmp_path: Path, body: str, name: str = "devster.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return path


def _errors(path: Path) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load_python_project(path, {})
    return [str(e) for e in info.value.errors]


def test_a_project_variable_built_in_a_loop_loads(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        from devster_tui import Dependency, Project, Task

        tasks = {"broker": Task(cmd="broker")}
        for queue in ["mail", "billing"]:
            tasks[f"worker-{queue}"] = Task(
                cmd=["worker", "--queue", queue],
                depends_on={"broker": Dependency(condition="started")},
            )
        project = Project(project="demo", tasks=tasks)
        """,
    )
    project, source_map = load_python_project(path, {})
    assert source_map is None
    assert list(project.tasks) == ["broker", "worker-mail", "worker-billing"]
    assert project.tasks["worker-mail"].cmd == ["worker", "--queue", "mail"]


def test_a_project_function_is_called(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        from devster_tui import Project, Task

        def project() -> Project:
            return Project(tasks={"a": Task(cmd="true")})
        """,
    )
    project, _ = load_python_project(path, {})
    assert list(project.tasks) == ["a"]


def test_a_plain_mapping_is_validated_like_yaml(tmp_path: Path) -> None:
    path = _write(
        tmp_path, 'project = {"tasks": {"a": {"cmd": "true", "stop": {"timeout": "5s"}}}}'
    )
    project, _ = load_python_project(path, {})
    assert project.tasks["a"].stop.timeout == 5.0


def test_a_project_function_with_an_argument_receives_the_variables(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        from devster_tui import Project, Task

        def project(environ):
            queues = environ["QUEUES"].split(",")
            return Project(tasks={f"worker-{q}": Task(cmd=["work", q]) for q in queues})
        """,
    )
    project, _ = load_python_project(path, {"QUEUES": "mail,billing"})
    assert list(project.tasks) == ["worker-mail", "worker-billing"]


def test_environ_given_to_the_file_is_the_mapping_passed_in(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        from devster_tui import Project, Task

        n = int(environ.get("WORKERS", "1"))
        project = Project(tasks={f"w{i}": Task(cmd="true") for i in range(n)})
        """,
    )
    project, _ = load_python_project(path, {"WORKERS": "3"})
    assert list(project.tasks) == ["w0", "w1", "w2"]


def test_helpers_next_to_the_file_are_importable_and_reloaded(tmp_path: Path) -> None:
    helper = tmp_path / "devster_helpers_for_test.py"
    helper.write_text("NAMES = ['one']\n", encoding="utf-8")
    path = _write(
        tmp_path,
        """
        from devster_helpers_for_test import NAMES
        from devster_tui import Project, Task

        project = Project(tasks={n: Task(cmd="true") for n in NAMES})
        """,
    )
    assert list(load_python_project(path, {})[0].tasks) == ["one"]
    assert str(tmp_path) not in sys.path
    helper.write_text("NAMES = ['two']\n", encoding="utf-8")
    assert list(load_python_project(path, {})[0].tasks) == ["two"]


def test_validation_error_points_at_the_line_that_built_the_bad_model(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        from devster_tui import Project, Task

        tasks = {}
        tasks["ok"] = Task(cmd="true")
        tasks["bad"] = Task(cmd="true", kind="jobb", stop={"timeout": "-1s"})
        project = Project(tasks=tasks)
        """,
    )
    errors = _errors(path)
    assert len(errors) == 2
    assert errors[0].startswith(f"{path}:5:0: kind: Input should be 'service' or 'job'")
    assert errors[1].startswith(f"{path}:5:0: stop.timeout: invalid duration '-1s'")
    assert "(building Task)" in errors[1]


def test_error_inside_a_helper_function_points_at_the_line_in_the_users_file(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path,
        """
        from devster_tui import Project, Task

        def worker(queue):
            return Task(cmd=["work", queue], restart="sometimes")

        project = Project(tasks={"w": worker("q")})
        """,
    )
    (error,) = _errors(path)
    assert error.startswith(f"{path}:4:0: restart")


def test_any_exception_becomes_an_error_with_its_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        queues = {"a": 1}
        project = queues["missing"]
        """,
    )
    assert _errors(path) == [f"{path}:2:0: KeyError: 'missing'"]


def test_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "project = (\n")
    (error,) = _errors(path)
    assert error.startswith(f"{path}:1:")
    assert "syntax error" in error


def test_exit_in_the_file_is_an_error_not_an_exit(tmp_path: Path) -> None:
    path = _write(tmp_path, "import sys\nsys.exit(3)\n")
    assert _errors(path) == [f"{path}:2:0: the file called exit(3)"]


def test_missing_project_variable_says_what_to_define(tmp_path: Path) -> None:
    path = _write(tmp_path, "tasks = {}\n")
    (error,) = _errors(path)
    assert "defines no 'project'" in error
    assert "def project() -> Project" in error


def test_project_of_the_wrong_type_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, "project = 42\n")
    assert _errors(path) == [f"{path}: 'project' must be a devster_tui.Project, got int"]


def test_python_configs_go_through_the_semantic_checks(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        from devster_tui import Project, Task

        api = Task(cmd="serve", depends_on=["dbb"])
        project = Project(tasks={"api": api, "db": Task(cmd="db")})
        """,
    )
    with pytest.raises(ConfigErrors) as info:
        load_project(path, environ={})
    assert [str(e) for e in info.value.errors] == [
        f"{path}: tasks.api.depends_on[0]: depends on unknown task 'dbb'; did you mean 'db'?"
    ]


def test_python_project_name_defaults_to_the_directory(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "from devster_tui import Project, Task\nproject = Project(tasks={'a': Task(cmd='x')})\n",
    )
    loaded = load_project(path, environ={})
    assert loaded.project.name == tmp_path.name
    assert loaded.source_map is None
