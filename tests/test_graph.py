"""Tests of the task graph: edges, start/stop order, levels, closures, dependents, cycles."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from devster_tui.commands.graph import RENDERERS, graph_json, render_mermaid, render_text
from devster_tui.config.graph import CycleError, TaskGraph
from devster_tui.config.schema import Project


def _graph(tasks: dict[str, Any], observers: dict[str, Any] | None = None) -> TaskGraph:
    return TaskGraph.from_project(_project(tasks, observers))


def _project(tasks: dict[str, Any], observers: dict[str, Any] | None = None) -> Project:
    return Project.model_validate({"project": "p", "tasks": tasks, "observers": observers or {}})


def _t(*deps: str, **extra: Any) -> dict[str, Any]:
    return {"cmd": "true", "depends_on": list(deps), **extra}


SHOP: dict[str, Any] = {
    "build": {"cmd": "make", "kind": "job", "triggers": ["src"]},
    "db": {"cmd": "db", "health": {"tcp": 5432}},
    "api": {
        "cmd": "api",
        "depends_on": {"db": {"condition": "healthy"}, "build": {"condition": "succeeded"}},
    },
    "errors": {"cmd": "grep ERROR", "stdin": "api.stderr"},
    "integration": {
        "cmd": "pytest",
        "kind": "job",
        "triggers": ["go"],
        "depends_on": {"api": {"condition": "healthy", "on_restart": "stop"}},
    },
    "deploy": {"cmd": "deploy", "kind": "job", "triggers": ["built"]},
}
SHOP_OBSERVERS: dict[str, Any] = {
    "src": {"files": {"paths": ["src"]}},
    "go": {"manual": {"prompt": "Run?"}},
    "built": {"task": {"task": "build"}},
    "oops": {"log": {"task": "api", "pattern": "Traceback"}},
}


def test_order_puts_dependencies_first_and_keeps_definition_order_among_equals() -> None:
    graph = _graph({"c": _t(), "b": _t("c"), "a": _t(), "d": _t("a", "b")})
    assert graph.order() == ["c", "b", "a", "d"]
    assert graph.stop_order() == ["d", "a", "b", "c"]


def test_order_is_definition_order_when_there_are_no_dependencies() -> None:
    names = [f"t{i}" for i in range(30)]
    graph = _graph({n: _t() for n in reversed(names)})
    assert graph.order() == list(reversed(names))


def test_levels_group_tasks_that_can_start_in_parallel() -> None:
    graph = _graph({"web": _t("api"), "api": _t("db", "cache"), "db": _t(), "cache": _t()})
    assert graph.levels() == [["db", "cache"], ["api"], ["web"]]


def test_level_is_one_more_than_the_deepest_dependency_not_the_shallowest() -> None:
    graph = _graph({"a": _t(), "b": _t("a"), "c": _t("a", "b")})
    assert graph.levels() == [["a"], ["b"], ["c"]]


def test_closure_of_a_selection_adds_what_it_depends_on_but_not_dependents() -> None:
    graph = _graph(SHOP, SHOP_OBSERVERS)
    assert graph.closure(["api"]) == ["build", "db", "api"]
    assert graph.closure(["integration"]) == ["build", "db", "api", "integration"]
    assert graph.closure(["db"]) == ["db"]


def test_closure_follows_pipes_to_the_producer_unless_asked_not_to() -> None:
    graph = _graph(SHOP, SHOP_OBSERVERS)
    assert graph.closure(["errors"]) == ["build", "db", "api", "errors"]
    assert graph.closure(["errors"], pipes=False) == ["errors"]


def test_closure_of_an_unknown_task_raises_key_error() -> None:
    with pytest.raises(KeyError, match="nope"):
        _graph(SHOP, SHOP_OBSERVERS).closure(["nope"])


def test_dependents_are_transitive_and_in_start_order() -> None:
    graph = _graph({"a": _t(), "b": _t("a"), "c": _t("b"), "d": _t(), "e": _t("a", "c")})
    assert graph.dependents("a") == ["b", "c", "e"]
    assert graph.direct_dependents("a") == ("b", "e")
    assert graph.dependents("d") == []


def test_edges_have_three_distinct_kinds_with_their_details() -> None:
    graph = _graph(SHOP, SHOP_OBSERVERS)
    deps = graph.edges_of("dependency")
    assert [(e.source, e.target, e.condition) for e in deps] == [
        ("db", "api", "healthy"),
        ("build", "api", "succeeded"),
        ("api", "integration", "healthy"),
    ]
    assert deps[2].on_restart == "stop"
    triggers = graph.edges_of("trigger")
    assert [(e.source, e.target, e.observer_kind, e.watched) for e in triggers] == [
        ("src", "build", "files", None),
        ("go", "integration", "manual", None),
        ("built", "deploy", "task", "build"),
    ]
    pipes = graph.edges_of("pipe")
    assert [(e.source, e.target, e.stream) for e in pipes] == [("api", "errors", "stderr")]
    assert graph.watches == {"built": "build", "oops": "api"}
    assert graph.triggered_by("go") == ("integration",)


def test_references_to_unknown_names_are_left_out_of_the_graph() -> None:
    graph = _graph({"a": _t("ghost", triggers=["nobody"], stdin="phantom.stdout")})
    assert graph.edges == ()
    assert graph.order() == ["a"]


def test_a_cycle_has_no_order_and_the_error_carries_the_path() -> None:
    graph = _graph({"a": _t("b"), "b": _t("c"), "c": _t("a"), "d": _t()})
    with pytest.raises(CycleError) as info:
        graph.order()
    assert info.value.cycle == ["a", "b", "c", "a"]
    assert "a -> b -> c -> a" in str(info.value)
    with pytest.raises(CycleError):
        graph.levels()


def test_each_cycle_is_found_once_even_when_cycles_share_tasks() -> None:
    graph = _graph({"a": _t("b", "c"), "b": _t("a"), "c": _t("a"), "x": _t("x")})
    assert graph.cycles() == [["a", "b", "a"], ["a", "c", "a"], ["x", "x"]]


def test_cycle_is_rotated_to_start_at_the_task_defined_first() -> None:
    graph = _graph({"z": _t(), "m": _t("n"), "n": _t("m")})
    assert graph.find_cycle() == ["m", "n", "m"]


def test_acyclic_graph_reports_no_cycle() -> None:
    assert _graph(SHOP, SHOP_OBSERVERS).find_cycle() is None


def test_cycle_search_stays_fast_on_a_wide_layered_dag() -> None:
    # 8 layers of 8 tasks, each depending on every task of the previous layer: 8^8 paths.
    tasks: dict[str, Any] = {}
    for layer in range(8):
        for i in range(8):
            deps = [f"l{layer - 1}_{j}" for j in range(8)] if layer else []
            tasks[f"l{layer}_{i}"] = _t(*deps)
    graph = _graph(tasks)
    started = time.perf_counter()
    assert graph.cycles() == []
    assert len(graph.levels()) == 8
    assert time.perf_counter() - started < 1.0


def test_cycle_enumeration_is_bounded_on_a_complete_graph() -> None:
    names = [f"n{i}" for i in range(12)]
    graph = _graph({n: _t(*(m for m in names if m != n)) for n in names})
    started = time.perf_counter()
    found = graph.cycles(limit=50)
    assert len(found) == 50
    assert time.perf_counter() - started < 2.0


def test_pipe_cycles_follow_stdin_sources() -> None:
    graph = _graph(
        {
            "a": {"cmd": "cat", "stdin": "b.stdout"},
            "b": {"cmd": "cat", "stdin": {"from": ["c", "x.stderr"]}},
            "c": {"cmd": "cat", "stdin": "a"},
            "x": {"cmd": "cat"},
        }
    )
    assert graph.pipe_cycles() == [["a", "b", "c", "a"]]
    assert graph.producers("b") == ("c", "x")
    assert graph.find_cycle() is None


# ---------------------------------------------------------------------- renderers


def test_json_output_has_the_documented_stable_structure() -> None:
    project = _project(SHOP, SHOP_OBSERVERS)
    data = graph_json(project, TaskGraph.from_project(project))
    assert set(data) == {"format", "project", "order", "levels", "tasks", "observers", "edges"}
    assert data["format"] == 1
    assert data["order"] == ["build", "db", "api", "errors", "integration", "deploy"]
    assert data["tasks"][0] == {
        "name": "build",
        "kind": "job",
        "environment": None,
        "mode": "normal",
        "level": 0,
        "autostart": True,
    }
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for edge in data["edges"]:
        by_kind.setdefault(edge["kind"], []).append(edge)
    assert by_kind["dependency"][0] == {
        "from": "db",
        "to": "api",
        "kind": "dependency",
        "condition": "healthy",
        "on_restart": "ignore",  # unset: a restarted service does not restart dependents
        "on_failure": "ignore",
    }
    assert by_kind["trigger"][2] == {
        "from": "built",
        "to": "deploy",
        "kind": "trigger",
        "observer_kind": "task",
        "watches": "build",
    }
    assert by_kind["pipe"] == [{"from": "api", "to": "errors", "kind": "pipe", "stream": "stderr"}]
    assert {"name": "oops", "kind": "log", "watches": "api"} in data["observers"]
    json.dumps(data)  # serialisable as is


def test_text_tree_shows_each_task_once_and_marks_repeats() -> None:
    project = _project(SHOP, SHOP_OBSERVERS)
    text = render_text(project, TaskGraph.from_project(project))
    lines = text.splitlines()
    assert lines[0] == "p: 6 tasks, 4 observers, 3 dependencies, 3 triggers, 1 pipe"
    assert "build  (job)  <~ src" in lines
    assert "`-[succeeded]-> api  (service)" in lines
    assert "    `-[healthy, on_restart=stop]-> integration  (job)  <~ go" in lines
    assert "`-[healthy]-> api  (see above)" in lines
    assert "errors  (service)  <= api.stderr" in lines
    assert "  built (task: build) -> deploy" in lines
    assert "  oops (log: api) -> (triggers no task)" in lines
    assert "  api.stderr -> errors" in lines


def test_mermaid_uses_a_different_arrow_for_each_edge_kind() -> None:
    project = _project(SHOP, SHOP_OBSERVERS)
    text = render_mermaid(project, TaskGraph.from_project(project))
    assert text.startswith("flowchart LR\n")
    assert "  t1 -->|healthy| t2" in text  # db -> api
    assert "  o0 -.->|trigger| t0" in text  # src -> build
    assert "  t2 ==>|stderr| t3" in text  # api -> errors
    assert "  t0 -.-|watched| o2" in text  # build watched by `built`


def test_mermaid_and_dot_escape_quotes_in_observer_names() -> None:
    project = _project({"a": _t(triggers=['say "hi"'])}, {'say "hi"': {"manual": {}}})
    graph = TaskGraph.from_project(project)
    assert '{{"say #quot;hi#quot;<br/>manual"}}' in render_mermaid(project, graph)
    assert '"observer:say \\"hi\\""' in RENDERERS["dot"](project, graph)


def test_dot_output_styles_the_three_edge_kinds_differently() -> None:
    project = _project(SHOP, SHOP_OBSERVERS)
    text = RENDERERS["dot"](project, TaskGraph.from_project(project))
    assert text.startswith('digraph "p" {')
    assert '"task:db" -> "task:api" [label="healthy", style=solid];' in text
    assert '"observer:src" -> "task:build" [label="trigger", style=dashed' in text
    assert '"task:api" -> "task:errors" [label="stderr", style=bold' in text
    assert text.rstrip().endswith("}")
