"""Tests of the semantic checks on validated models (no positions: Python-config style)."""

from __future__ import annotations

from typing import Any

import pytest

from devster_tui.config.checks import check_project, did_you_mean
from devster_tui.config.errors import ConfigError, Position, SourceMap
from devster_tui.config.schema import Project


def _errors(data: dict[str, Any], source_map: SourceMap | None = None) -> list[ConfigError]:
    return check_project(Project.model_validate(data), source_map, "devster.py")


def _messages(data: dict[str, Any]) -> list[tuple[str, str]]:
    from devster_tui.config.errors import format_path

    return [(format_path(e.path), e.message) for e in _errors(data)]


def _one(data: dict[str, Any]) -> tuple[str, str]:
    found = _messages(data)
    assert len(found) == 1, found
    return found[0]


def test_a_valid_project_has_no_errors() -> None:
    data = {
        "environments": {"dev": {"layers": ["local"]}},
        "hosts": {"web-1": {"ssh": {"host": "10.0.0.1"}, "labels": {"role": "web"}}},
        "observers": {
            "src": {"files": {"paths": ["src"]}},
            "built": {"task": {"task": "build"}},
            "oops": {"log": {"task": "api", "pattern": "ERROR"}},
        },
        "tasks": {
            "build": {"cmd": "make", "kind": "job", "triggers": ["src"]},
            "db": {"cmd": "db", "health": {"tcp": 5432}, "ports": {"pg": 5432}},
            "api": {
                "cmd": ["api", "--port", "${ports.http}"],
                "ports": {"http": 8080},
                "env": {"URL": "http://localhost:${ports.http}"},
                "health": {"http": "http://127.0.0.1:${ports.http}/health"},
                "ready_log": "listening",
                "depends_on": {
                    "db": {"condition": "healthy"},
                    "build": {"condition": "succeeded"},
                },
                "environment": "dev",
            },
            "tail": {"cmd": "tail -F x", "hosts": {"role": "web"}},
            "tail2": {"cmd": "tail -F x", "hosts": ["web-1"], "triggers": ["built", "oops"]},
            "errors": {"cmd": "grep ERROR", "stdin": "api.stderr", "depends_on": ["api"]},
            "smoke": {
                "cmd": "curl",
                "kind": "job",
                "trigger_mode": "manual",
                "depends_on": {
                    "api": {"condition": "log_ready"},
                    "build": {"condition": "completed"},
                },
            },
        },
    }
    assert _errors(data) == []


def test_unknown_dependency_is_reported_with_a_suggestion() -> None:
    path, message = _one({"tasks": {"db": {"cmd": "x"}, "api": {"cmd": "y", "depends_on": ["bd"]}}})
    assert path == "tasks.api.depends_on[0]"
    assert message == "depends on unknown task 'bd'; did you mean 'db'?"


def test_unknown_name_without_a_close_match_lists_the_known_names() -> None:
    _, message = _one({"tasks": {"db": {"cmd": "x"}, "api": {"cmd": "y", "depends_on": ["zzz"]}}})
    assert message == "depends on unknown task 'zzz'; known tasks: db, api"


def test_did_you_mean_says_when_nothing_is_defined() -> None:
    assert did_you_mean("prod", [], "environments") == "; no environments are defined"


def test_did_you_mean_catches_swapped_letters_and_abbreviations() -> None:
    assert did_you_mean("bd", ["api", "db"], "tasks") == "; did you mean 'db'?"
    assert did_you_mean("prod", ["dev", "production"], "x") == "; did you mean 'production'?"
    assert did_you_mean("zq", ["api"], "tasks") == "; known tasks: api"


def test_unknown_trigger_observer_is_reported() -> None:
    assert _one(
        {"observers": {"src": {"manual": {}}}, "tasks": {"a": {"cmd": "x", "triggers": ["scr"]}}}
    ) == ("tasks.a.triggers[0]", "unknown observer 'scr'; did you mean 'src'?")


def test_unknown_stdin_producer_is_reported() -> None:
    assert _one({"tasks": {"api": {"cmd": "x"}, "e": {"cmd": "y", "stdin": "apu.stderr"}}}) == (
        "tasks.e.stdin.from",
        "stdin reads from unknown task 'apu'; did you mean 'api'?",
    )


def test_unknown_stdin_producer_in_a_list_points_at_the_item() -> None:
    path, _ = _one({"tasks": {"a": {"cmd": "x"}, "e": {"cmd": "y", "stdin": {"from": ["a", "b"]}}}})
    assert path == "tasks.e.stdin.from[1]"


@pytest.mark.parametrize("kind", ["task", "log"])
def test_observer_watching_an_unknown_task_is_reported(kind: str) -> None:
    spec: dict[str, Any] = {"task": "biuld"}
    if kind == "log":
        spec["pattern"] = "x"
    assert _one({"observers": {"o": {kind: spec}}, "tasks": {"build": {"cmd": "make"}}}) == (
        f"observers.o.{kind}.task",
        "watches unknown task 'biuld'; did you mean 'build'?",
    )


def test_unknown_environment_of_a_task_and_of_a_host_are_reported() -> None:
    found = _messages(
        {
            "environments": {"production": {}},
            "hosts": {"h": {"ssh": {"host": "h"}, "environment": "prod"}},
            "tasks": {"a": {"cmd": "x", "environment": "producton"}},
        }
    )
    assert sorted(found) == [
        ("hosts.h.environment", "unknown environment 'prod'; did you mean 'production'?"),
        ("tasks.a.environment", "unknown environment 'producton'; did you mean 'production'?"),
    ]


def test_unknown_host_name_in_a_task_host_list_is_reported() -> None:
    assert _one(
        {
            "hosts": {"web-1": {"ssh": {"host": "a"}}},
            "tasks": {"a": {"cmd": "x", "hosts": ["web1"]}},
        }
    ) == ("tasks.a.hosts[0]", "unknown host 'web1'; did you mean 'web-1'?")


def test_label_selector_that_matches_no_host_is_reported() -> None:
    hosts = {"w": {"ssh": {"host": "a"}, "labels": {"role": "web", "dc": "eu"}}}
    assert _one({"hosts": hosts, "tasks": {"a": {"cmd": "x", "hosts": {"role": "db"}}}}) == (
        "tasks.a.hosts",
        "host selector role=db matches no host; labels in use: dc=eu, role=web",
    )
    # All labels of the selector must match the same host.
    _, message = _one(
        {"hosts": hosts, "tasks": {"a": {"cmd": "x", "hosts": {"role": "web", "dc": "us"}}}}
    )
    assert "matches no host" in message
    assert _one({"tasks": {"a": {"cmd": "x", "hosts": {"role": "db"}}}})[1].endswith(
        "no hosts are defined"
    )


def test_self_dependency_is_reported_once_and_not_as_a_cycle() -> None:
    assert _one({"tasks": {"a": {"cmd": "x", "depends_on": ["a"]}}}) == (
        "tasks.a.depends_on[0]",
        "task 'a' depends on itself",
    )


def test_dependency_cycle_is_printed_as_a_path_once() -> None:
    path, message = _one(
        {
            "tasks": {
                "a": {"cmd": "x", "depends_on": ["b"]},
                "b": {"cmd": "x", "depends_on": {"c": {}}},
                "c": {"cmd": "x", "depends_on": ["a"]},
            }
        }
    )
    assert path == "tasks.a.depends_on[0]"
    assert message == "dependency cycle: a -> b -> c -> a (a -> b, b -> c, c -> a)"


def test_two_cycles_through_one_task_are_both_reported() -> None:
    found = _messages(
        {
            "tasks": {
                "a": {"cmd": "x", "depends_on": ["b", "c"]},
                "b": {"cmd": "x", "depends_on": ["a"]},
                "c": {"cmd": "x", "depends_on": ["a"]},
            }
        }
    )
    assert [m for _, m in found] == [
        "dependency cycle: a -> b -> a (a -> b, b -> a)",
        "dependency cycle: a -> c -> a (a -> c, c -> a)",
    ]


def test_cycle_edges_carry_their_positions_when_a_source_map_is_known() -> None:
    smap = SourceMap()
    smap.set(("tasks", "a", "depends_on", "b"), Position(3, 17), Position(3, 20))
    smap.set(("tasks", "b", "depends_on", 0), None, Position(5, 18))
    errors = _errors(
        {
            "tasks": {
                "a": {"cmd": "x", "depends_on": {"b": {}}},
                "b": {"cmd": "x", "depends_on": ["a"]},
            }
        },
        smap,
    )
    assert [str(e) for e in errors] == [
        "devster.py:3:17: tasks.a.depends_on.b: dependency cycle: a -> b -> a "
        "(a -> b at 3:17, b -> a at 5:18)"
    ]


def test_reading_own_output_is_reported_and_not_as_a_pipe_cycle() -> None:
    assert _one({"tasks": {"a": {"cmd": "x", "stdin": "a.stdout"}}}) == (
        "tasks.a.stdin.from",
        "task 'a' cannot read its own output on stdin",
    )


def test_pipes_forming_a_cycle_are_reported() -> None:
    assert _one(
        {
            "tasks": {
                "a": {"cmd": "x", "stdin": "b.stdout"},
                "b": {"cmd": "x", "stdin": {"from": ["c"]}},
                "c": {"cmd": "x", "stdin": "a.stderr"},
            }
        }
    ) == (
        "tasks.a.stdin.from",
        "stdin pipes form a cycle: a -> b -> c -> a "
        "(a reads b.stdout, b reads c, c reads a.stderr)",
    )


def test_healthy_condition_on_a_task_without_health_check_is_reported() -> None:
    path, message = _one(
        {
            "tasks": {
                "db": {"cmd": "x"},
                "a": {"cmd": "y", "depends_on": {"db": {"condition": "healthy"}}},
            }
        }
    )
    assert path == "tasks.a.depends_on.db.condition"
    assert "task 'db' has no 'health'" in message


def test_log_ready_condition_without_ready_log_is_reported() -> None:
    _, message = _one(
        {
            "tasks": {
                "db": {"cmd": "x"},
                "a": {"cmd": "y", "depends_on": {"db": {"condition": "log_ready"}}},
            }
        }
    )
    assert "task 'db' has no 'ready_log'" in message


@pytest.mark.parametrize("condition", ["completed", "succeeded"])
def test_completion_condition_on_a_service_is_reported(condition: str) -> None:
    _, message = _one(
        {
            "tasks": {
                "db": {"cmd": "x"},
                "a": {"cmd": "y", "depends_on": {"db": {"condition": condition}}},
            }
        }
    )
    assert message.startswith(f"condition '{condition}' needs a job, but task 'db' is a service")
    assert "only jobs complete" in message


def test_same_port_in_two_tasks_is_reported_at_the_second() -> None:
    assert _one(
        {
            "tasks": {
                "a": {"cmd": "x", "ports": {"http": 8080}},
                "b": {"cmd": "y", "ports": {"web": 8080}},
            }
        }
    ) == ("tasks.b.ports.web", "port 8080 is already declared by tasks.a.ports.http")


def test_port_reference_to_an_undeclared_name_is_reported_wherever_it_is_used() -> None:
    found = _messages(
        {
            "tasks": {
                "a": {
                    "cmd": ["serve", "--port", "${ports.htp}"],
                    "ports": {"http": 8080},
                    "env": {"PORT": "${ports.http}", "OTHER": "${ports.admin}"},
                    "health": {"http": "http://localhost:${ports.web}/"},
                    "liveness": {"exec": "curl localhost:${ports.live}"},
                },
                "b": {"cmd": "serve ${ports.http}"},
            }
        }
    )
    assert sorted(found) == [
        ("tasks.a.cmd[2]", "${ports.htp} names no port of task 'a'; did you mean 'http'?"),
        ("tasks.a.env.OTHER", "${ports.admin} names no port of task 'a'; known ports: http"),
        ("tasks.a.health.http", "${ports.web} names no port of task 'a'; known ports: http"),
        ("tasks.a.liveness.exec", "${ports.live} names no port of task 'a'; known ports: http"),
        ("tasks.b.cmd", "${ports.http} names no port of task 'b'; declare it under tasks.b.ports"),
    ]


def test_job_with_a_liveness_check_is_reported() -> None:
    assert _one({"tasks": {"j": {"cmd": "x", "kind": "job", "liveness": {"tcp": 80}}}})[0] == (
        "tasks.j.liveness"
    )


def test_missing_cmd_is_an_error_unless_a_docker_build_layer_provides_the_work() -> None:
    assert _one({"tasks": {"a": {"kind": "job"}}}) == (
        "tasks.a",
        "'cmd' is missing (only a task running in an environment with a docker build layer "
        "may leave it out)",
    )
    build_env = {"layers": [{"docker": {"build": {"tag": "app:dev"}}}]}
    assert (
        _errors({"environments": {"img": build_env}, "tasks": {"a": {"environment": "img"}}}) == []
    )
    exec_env = {"layers": [{"docker": {"container": "app"}}]}
    assert (
        len(_errors({"environments": {"c": exec_env}, "tasks": {"a": {"environment": "c"}}})) == 1
    )


def test_manual_trigger_mode_without_triggers_is_fine() -> None:
    assert _errors({"tasks": {"a": {"cmd": "x", "trigger_mode": "manual"}}}) == []


def test_every_problem_of_a_file_is_reported_in_one_run() -> None:
    found = _messages(
        {
            "tasks": {
                "a": {"depends_on": ["a", "ghost"], "triggers": ["none"], "environment": "e"},
                "b": {"cmd": "x", "kind": "job", "liveness": {"tcp": 1}, "stdin": "nobody"},
            }
        }
    )
    assert [path for path, _ in found] == [
        "tasks.a.depends_on[0]",
        "tasks.a.depends_on[1]",
        "tasks.a.triggers[0]",
        "tasks.a.environment",
        "tasks.b.stdin.from",
        "tasks.b.liveness",
    ]


def test_errors_without_a_source_map_have_line_and_column_zero() -> None:
    (error,) = _errors({"tasks": {"a": {"cmd": "x", "depends_on": ["b"]}}})
    assert (error.file, error.line, error.col) == ("devster.py", 0, 0)
    assert (
        str(error)
        == "devster.py: tasks.a.depends_on[0]: depends on unknown task 'b'; known tasks: a"
    )
