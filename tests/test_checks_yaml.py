"""Semantic checks through the YAML loader: each error points at the offending value."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from devster_tui.config.errors import ConfigErrors
from devster_tui.config.loader import load_project


def _errors(tmp_path: Path, text: str) -> list[str]:
    file = tmp_path / "devster.yaml"
    file.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    with pytest.raises(ConfigErrors) as info:
        load_project(file, environ={})
    prefix = f"{file}:"
    return [str(e).removeprefix(prefix) for e in info.value.errors]


def test_cycle_names_the_position_of_every_edge_once(tmp_path: Path) -> None:
    assert _errors(
        tmp_path,
        """
        tasks:
          a:
            cmd: x
            depends_on:
              b: {}
          b:
            cmd: x
            depends_on: [c]
          c:
            cmd: x
            depends_on:
              a: {condition: started}
        """,
    ) == [
        "5:7: tasks.a.depends_on.b: dependency cycle: a -> b -> c -> a "
        "(a -> b at 5:7, b -> c at 8:18, c -> a at 12:7)"
    ]


def test_unknown_references_point_at_the_value_as_written(tmp_path: Path) -> None:
    assert _errors(
        tmp_path,
        """
        observers:
          src: {files: {paths: [src]}}
          done: {task: {task: biuld}}
        tasks:
          build: {cmd: make, kind: job, triggers: [scr]}
          api: {cmd: x, depends_on: [bulid], environment: dev, stdin: biuld.stderr}
        """,
    ) == [
        "3:23: observers.done.task.task: watches unknown task 'biuld'; did you mean 'build'?",
        "5:44: tasks.build.triggers[0]: unknown observer 'scr'; did you mean 'src'?",
        "6:30: tasks.api.depends_on[0]: depends on unknown task 'bulid'; did you mean 'build'?",
        "6:51: tasks.api.environment: unknown environment 'dev'; no environments are defined",
        "6:63: tasks.api.stdin.from: stdin reads from unknown task 'biuld'; did you mean 'build'?",
    ]


def test_condition_error_points_at_the_condition(tmp_path: Path) -> None:
    assert _errors(
        tmp_path,
        """
        tasks:
          db: {cmd: x}
          api:
            cmd: y
            depends_on:
              db:
                condition: succeeded
        """,
    ) == [
        "7:20: tasks.api.depends_on.db.condition: condition 'succeeded' needs a job, but task "
        "'db' is a service; only jobs complete (set tasks.db.kind: job, or use 'started' or "
        "'healthy')"
    ]


def test_duplicate_port_names_the_line_of_the_first_declaration(tmp_path: Path) -> None:
    assert _errors(
        tmp_path,
        """
        tasks:
          a:
            cmd: x
            ports: {http: 8080}
          b:
            cmd: y
            ports:
              web: 8080
        """,
    ) == ["8:12: tasks.b.ports.web: port 8080 is already declared by tasks.a.ports.http (line 4)"]


def test_missing_cmd_points_at_the_task_name(tmp_path: Path) -> None:
    assert _errors(
        tmp_path,
        """
        tasks:
          ok: {cmd: x}
          empty:
            kind: job
        """,
    ) == [
        "3:3: tasks.empty: 'cmd' is missing (only a task running in an environment with a "
        "docker build layer may leave it out)"
    ]


def test_port_reference_error_points_at_the_list_item(tmp_path: Path) -> None:
    assert _errors(
        tmp_path,
        """
        tasks:
          api:
            cmd: [serve, --port, "${ports.htp}"]
            ports: {http: 8080}
        """,
    ) == ["3:26: tasks.api.cmd[2]: ${ports.htp} names no port of task 'api'; did you mean 'http'?"]
