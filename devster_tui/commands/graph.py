"""``devster graph``: print the task graph as a text tree, Mermaid, Graphviz dot or JSON.

Dependencies (with their conditions), triggers (observer -> task) and pipes (producer.stream
-> consumer) are drawn as three distinct kinds of edges.

The JSON form (``--format json``) is stable::

    {
      "format": 1,
      "project": "shop",
      "order": ["db", "build", "api"],            # start order
      "levels": [["db", "build"], ["api"]],       # groups started in parallel
      "tasks": [{"name", "kind", "environment", "mode", "level", "autostart"}],
      "observers": [{"name", "kind", "watches"}], # watches: task of task/log observers
      "edges": [
        {"from": dependency, "to": dependent, "kind": "dependency",
         "condition", "on_restart", "on_failure"},
        {"from": observer, "to": task, "kind": "trigger", "observer_kind", "watches"},
        {"from": producer, "to": consumer, "kind": "pipe", "stream"}
      ]
    }
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from devster_tui.commands.options import add_config_options
from devster_tui.errors import ExitCode

if TYPE_CHECKING:
    from devster_tui.config.graph import Edge, TaskGraph
    from devster_tui.config.schema import Project

FORMATS = ("text", "mermaid", "dot", "json")
"""Output formats of ``devster graph``."""

JSON_FORMAT_VERSION = 1
"""Version of the ``--format json`` structure."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``-f/--file``, ``--profile`` and ``--format``."""
    add_config_options(parser)
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (indented tree, default), mermaid (flowchart), dot (Graphviz) or json",
    )


# ---------------------------------------------------------------------- text


def _dependency_label(edge: Edge) -> str:
    parts = [edge.condition or "started"]
    if edge.on_restart_set:
        parts.append(f"on_restart={edge.on_restart}")
    if edge.on_failure not in (None, "ignore"):
        parts.append(f"on_failure={edge.on_failure}")
    return ", ".join(parts)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _task_label(project: Project, graph: TaskGraph, name: str) -> str:
    task = project.tasks[name]
    parts: list[str] = [task.kind]
    if task.environment:
        parts.append(f"env {task.environment}")
    if task.mode == "observe":
        parts.append("observe")
    if not task.autostart:
        parts.append("no autostart")
    label = f"{name}  ({', '.join(parts)})"
    triggers = [e.source for e in graph.edges if e.kind == "trigger" and e.target == name]
    if triggers:
        label += f"  <~ {', '.join(triggers)}"
    if task.stdin is not None and task.stdin.sources:
        label += f"  <= {', '.join(task.stdin.sources)}"
    return label


def _observer_label(project: Project, graph: TaskGraph, name: str) -> str:
    kind = graph.observer_kinds[name]
    watched = graph.watches.get(name)
    if watched is not None:
        return f"{name} ({kind}: {watched})"
    return f"{name} ({kind})"


def render_text(project: Project, graph: TaskGraph) -> str:
    """An indented tree by dependency (each task under what it depends on), then the
    triggers and the pipes.  A task reached twice is expanded only the first time.

    Each task line ends with ``<~ OBSERVER`` for its triggers and ``<= TASK.stream`` for
    its stdin pipes."""
    deps = graph.edges_of("dependency")
    triggers = graph.edges_of("trigger")
    pipes = graph.edges_of("pipe")
    lines = [
        f"{project.name or 'project'}: {_plural(len(graph.tasks), 'task')}, "
        f"{_plural(len(graph.observers), 'observer')}, "
        f"{len(deps)} dependenc{'y' if len(deps) == 1 else 'ies'}, "
        f"{_plural(len(triggers), 'trigger')}, {_plural(len(pipes), 'pipe')}",
        "",
    ]
    children: dict[str, list[Edge]] = {name: [] for name in graph.tasks}
    for edge in deps:
        children[edge.source].append(edge)
    shown: set[str] = set()

    def walk(name: str, prefix: str) -> None:
        kids = children[name]
        for i, edge in enumerate(kids):
            last = i == len(kids) - 1
            branch = "`-" if last else "|-"
            label = f"{prefix}{branch}[{_dependency_label(edge)}]-> "
            if edge.target in shown:
                lines.append(f"{label}{edge.target}  (see above)")
                continue
            shown.add(edge.target)
            lines.append(label + _task_label(project, graph, edge.target))
            walk(edge.target, prefix + ("    " if last else "|   "))

    roots = [n for n in graph.tasks if not graph.dependencies(n)]
    # Tasks in a cycle have no root; list them too so nothing is hidden.
    for name in [*roots, *graph.tasks]:
        if name in shown:
            continue
        shown.add(name)
        lines.append(_task_label(project, graph, name))
        walk(name, "")
    if graph.observers:
        lines += ["", "triggers (observer -> task):"]
        for obs in graph.observers:
            targets = graph.triggered_by(obs)
            arrow = ", ".join(targets) if targets else "(triggers no task)"
            lines.append(f"  {_observer_label(project, graph, obs)} -> {arrow}")
    if pipes:
        lines += ["", "pipes (producer.stream -> consumer):"]
        for edge in pipes:
            source = edge.source if edge.stream == "both" else f"{edge.source}.{edge.stream}"
            lines.append(f"  {source} -> {edge.target}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- mermaid


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def render_mermaid(project: Project, graph: TaskGraph) -> str:
    """A Mermaid ``flowchart LR``: dependencies as solid arrows labelled with the condition,
    triggers as dotted arrows from hexagon observer nodes, pipes as thick arrows."""
    tid = {name: f"t{i}" for i, name in enumerate(graph.tasks)}
    oid = {name: f"o{i}" for i, name in enumerate(graph.observers)}
    out = [
        "flowchart LR",
        "  %% dependency: A -->|condition| B ; trigger: O -.->|trigger| T ; pipe: P ==>|stream| C",
    ]
    for name in graph.tasks:
        task = project.tasks[name]
        shape = ('(["', '"])') if task.kind == "job" else ('["', '"]')
        out.append(f"  {tid[name]}{shape[0]}{_mermaid_text(name)}<br/>{task.kind}{shape[1]}")
    for name in graph.observers:
        kind = graph.observer_kinds[name]
        out.append(f'  {oid[name]}{{{{"{_mermaid_text(name)}<br/>{kind}"}}}}')
    for edge in graph.edges:
        if edge.kind == "dependency":
            out.append(f"  {tid[edge.source]} -->|{_dependency_label(edge)}| {tid[edge.target]}")
        elif edge.kind == "trigger":
            out.append(f"  {oid[edge.source]} -.->|trigger| {tid[edge.target]}")
        else:
            out.append(f"  {tid[edge.source]} ==>|{edge.stream}| {tid[edge.target]}")
    for obs, watched in graph.watches.items():
        out.append(f"  {tid[watched]} -.-|watched| {oid[obs]}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------- dot


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_dot(project: Project, graph: TaskGraph) -> str:
    """A Graphviz digraph: dependencies solid, triggers dashed orange from observer hexagons,
    pipes bold blue, an observer's watched task linked by a dotted line."""

    def t(name: str) -> str:
        return _dot_text(f"task:{name}")

    def o(name: str) -> str:
        return _dot_text(f"observer:{name}")

    out = [
        f"digraph {_dot_text(project.name or 'devster')} {{",
        "  rankdir=LR;",
        '  node [fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for name in graph.tasks:
        task = project.tasks[name]
        shape = "box, style=rounded" if task.kind == "job" else "box"
        label = _dot_text(name + "\n" + task.kind)
        out.append(f"  {t(name)} [label={label}, shape={shape}];")
    for name in graph.observers:
        kind = graph.observer_kinds[name]
        label = _dot_text(name + "\n" + kind)
        out.append(f"  {o(name)} [label={label}, shape=hexagon, style=dashed];")
    for edge in graph.edges:
        if edge.kind == "dependency":
            attrs = f"label={_dot_text(_dependency_label(edge))}, style=solid"
            out.append(f"  {t(edge.source)} -> {t(edge.target)} [{attrs}];")
        elif edge.kind == "trigger":
            attrs = 'label="trigger", style=dashed, color=darkorange'
            out.append(f"  {o(edge.source)} -> {t(edge.target)} [{attrs}];")
        else:
            attrs = f"label={_dot_text(edge.stream or 'both')}, style=bold, color=blue"
            out.append(f"  {t(edge.source)} -> {t(edge.target)} [{attrs}];")
    for obs, watched in graph.watches.items():
        out.append(f'  {t(watched)} -> {o(obs)} [label="watched", style=dotted, arrowhead=none];')
    out.append("}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------- json


def graph_json(project: Project, graph: TaskGraph) -> dict[str, Any]:
    """The stable JSON structure documented in this module's docstring."""
    levels = graph.levels()
    level_of = {name: i for i, level in enumerate(levels) for name in level}
    edges: list[dict[str, Any]] = []
    for edge in graph.edges:
        item: dict[str, Any] = {"from": edge.source, "to": edge.target, "kind": edge.kind}
        if edge.kind == "dependency":
            item |= {
                "condition": edge.condition,
                "on_restart": edge.on_restart,
                "on_failure": edge.on_failure,
            }
        elif edge.kind == "trigger":
            item |= {"observer_kind": edge.observer_kind, "watches": edge.watched}
        else:
            item["stream"] = edge.stream
        edges.append(item)
    return {
        "format": JSON_FORMAT_VERSION,
        "project": project.name,
        "order": graph.order(),
        "levels": levels,
        "tasks": [
            {
                "name": name,
                "kind": project.tasks[name].kind,
                "environment": project.tasks[name].environment,
                "mode": project.tasks[name].mode,
                "level": level_of[name],
                "autostart": project.tasks[name].autostart,
            }
            for name in graph.tasks
        ],
        "observers": [
            {"name": name, "kind": graph.observer_kinds[name], "watches": graph.watches.get(name)}
            for name in graph.observers
        ],
        "edges": edges,
    }


def render_json(project: Project, graph: TaskGraph) -> str:
    """:func:`graph_json` as indented JSON text."""
    return json.dumps(graph_json(project, graph), indent=2) + "\n"


RENDERERS = {
    "text": render_text,
    "mermaid": render_mermaid,
    "dot": render_dot,
    "json": render_json,
}
"""Format name -> renderer."""


def run(args: argparse.Namespace) -> int:
    """Load the project and print the graph of the tasks its active profiles run (as
    ``devster up`` does); config errors go to stderr with exit code 2."""
    from devster_tui.commands.options import load_from_args
    from devster_tui.config.graph import TaskGraph, with_profiles

    loaded = load_from_args(args)
    if loaded is None:
        return ExitCode.CONFIG
    project = with_profiles(loaded.project, loaded.profiles)
    graph = TaskGraph.from_project(project)
    sys.stdout.write(RENDERERS[args.format](project, graph))
    return ExitCode.OK
