"""One run reports every error of a file: type errors and semantic errors together."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from devster_tui.config.errors import ConfigErrors
from devster_tui.config.loader import load_project


def _errors(tmp_path: Path, text: str, **environ: str) -> list[str]:
    file = tmp_path / "devster.yaml"
    file.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    with pytest.raises(ConfigErrors) as info:
        load_project(file, environ=environ)
    prefix = f"{file}:"
    return [str(e).removeprefix(prefix) for e in info.value.errors]


def test_type_error_unknown_dependency_and_cycle_are_reported_in_one_run(
    tmp_path: Path,
) -> None:
    assert _errors(
        tmp_path,
        """
        tasks:
          a:
            cmd: x
            autostart: yes
            depends_on: [b]
          b:
            cmd: x
            depends_on: [a, ghost]
        """,
    ) == [
        "4:16: tasks.a.autostart: expected true or false, got 'yes'",
        "5:18: tasks.a.depends_on[0]: dependency cycle: a -> b -> a "
        "(a -> b at 5:18, b -> a at 8:18)",
        "8:21: tasks.b.depends_on[1]: depends on unknown task 'ghost'; known tasks: a, b",
    ]


def test_invalid_task_is_still_a_known_name_for_references(tmp_path: Path) -> None:
    # `db` has a type error; `api` depending on it, and the observer watching it, are fine.
    assert _errors(
        tmp_path,
        """
        observers:
          db-done: {task: {task: db}}
        tasks:
          db: {cmd: x, kind: servce, health: {tcp: 5432}}
          api: {cmd: y, depends_on: {db: {condition: healthy}}, triggers: [db-done]}
        """,
    ) == [
        "4:22: tasks.db.kind: expected one of service, job, got 'servce'; did you mean 'service'?"
    ]


def test_invalid_observer_environment_and_host_are_known_names(tmp_path: Path) -> None:
    assert _errors(
        tmp_path,
        """
        environments:
          dev: {layers: [remote]}
        hosts:
          web1: {ssh: {host: web1, port: 0}, labels: {role: web}}
        observers:
          gate: {manual: {approve: sometimes}}
        tasks:
          build: {environment: dev, kind: job}
          deploy: {cmd: x, hosts: {role: web}, triggers: [gate], environment: dev}
          push: {cmd: y, hosts: [web1]}
        """,
    ) == [
        "2:18: environments.dev.layers[0]: a layer written as text must be 'local', got 'remote'",
        "4:34: hosts.web1.ssh.port: a port must be between 1 and 65535, got 0",
        "6:28: observers.gate.manual.approve: expected one of once, always, got 'sometimes'",
    ]


def test_edges_of_an_invalid_task_are_still_checked(tmp_path: Path) -> None:
    assert _errors(
        tmp_path,
        """
        tasks:
          a:
            cmd: x
            restart: sometimes
            depends_on: [bb]
            stdin: a.stdout
            triggers: [src]
          b: {cmd: y}
        """,
    ) == [
        "4:14: tasks.a.restart: expected one of no, on-failure, always, got 'sometimes'",
        "5:18: tasks.a.depends_on[0]: depends on unknown task 'bb'; did you mean 'b'?",
        "6:12: tasks.a.stdin.from: task 'a' cannot read its own output on stdin",
        "7:16: tasks.a.triggers[0]: unknown observer 'src'; no observers are defined",
    ]


def test_invalid_task_name_is_reported_once_and_its_edges_checked(tmp_path: Path) -> None:
    assert _errors(
        tmp_path,
        """
        tasks:
          api.v2: {cmd: x, depends_on: [nope]}
          web: {cmd: y, depends_on: [api.v2]}
        """,
    ) == [
        "2:3: tasks.\"api.v2\": invalid name 'api.v2': use letters, digits, '_' and '-' only "
        "(no dots or spaces)",
        "2:33: tasks.\"api.v2\".depends_on[0]: depends on unknown task 'nope'; known tasks: "
        "api.v2, web",
    ]


def test_unset_variable_is_not_reported_again_as_an_unknown_task(tmp_path: Path) -> None:
    errors = _errors(
        tmp_path,
        """
        tasks:
          api: {cmd: x, depends_on: ["${DEP}"], autostart: yes}
        """,
    )
    assert len(errors) == 2, errors
    assert errors[0].startswith("2:31: tasks.api.depends_on[0]: variable DEP is not set")
    assert errors[1] == "2:52: tasks.api.autostart: expected true or false, got 'yes'"


def test_semantic_error_is_reported_next_to_an_unset_variable(tmp_path: Path) -> None:
    errors = _errors(
        tmp_path,
        """
        tasks:
          api: {cmd: "run ${NOPE}", depends_on: [db]}
        """,
    )
    assert [e.split(": ")[0] for e in errors] == ["2:19", "2:42"]
    assert "unknown task 'db'" in errors[1]


def test_collection_that_is_not_a_mapping_skips_the_semantic_checks(tmp_path: Path) -> None:
    # With `observers` unreadable, `triggers: [gate]` cannot be judged: no guess is made.
    assert _errors(
        tmp_path,
        """
        observers: [gate]
        tasks:
          api: {cmd: x, triggers: [gate]}
        """,
    ) == ["1:12: observers: expected a mapping, got a list"]


def test_same_error_from_two_stages_is_printed_once(tmp_path: Path) -> None:
    errors = _errors(
        tmp_path,
        """
        tasks:
          a: {cmd: x, depends_on: [b], kind: jbo}
          b: {cmd: x, depends_on: [a]}
        """,
    )
    assert len(errors) == len(set(errors)) == 2, errors
