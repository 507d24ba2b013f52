"""Semantic checks of a validated project: references, cycles, conditions, ports, commands.

Pydantic validates each model on its own; what spans models (a ``depends_on`` naming a task
that does not exist, a cycle, ``condition: healthy`` on a task without a health check) is
checked here, after validation and before anything starts.  Pure: no I/O, every problem is
returned (not just the first) with the position of the offending value when a source map is
known (YAML), or line and column 0 (Python configs).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

from devster_tui.config.errors import ConfigError, KeyPath, SourceMap
from devster_tui.config.graph import TaskGraph
from devster_tui.config.schema import HealthCheck, Project, Task
from devster_tui.errors import did_you_mean as did_you_mean

_PORT_REF = re.compile(r"\$\{ports\.([^}]*)\}")
"""``${ports.NAME}`` inside a command, env value or health check."""


@dataclass(frozen=True, slots=True)
class Placeholders:
    """Entries that failed validation and stand in a partial project only by their names.

    When a file has type errors, the loader still runs the semantic checks over the entries
    that validate, so a user sees every problem in one run.  An invalid entry is replaced by
    a minimal stand-in that keeps its name (so references to it are not reported as
    unknown) and, for a task, the edges that validate; nothing else about it is known, so
    no check reads its content.
    """

    tasks: frozenset[str] = frozenset()
    """Names of tasks that failed validation."""
    observers: frozenset[str] = frozenset()
    """Names of observers that failed validation."""
    environments: frozenset[str] = frozenset()
    """Names of environments that failed validation."""
    hosts: frozenset[str] = frozenset()
    """Names of hosts that failed validation."""


class _Checker:
    """Collects the errors of one project."""

    def __init__(
        self,
        project: Project,
        source_map: SourceMap | None,
        file: str,
        placeholders: Placeholders,
    ) -> None:
        self.project = project
        self.source_map = source_map
        self.file = file
        self.placeholders = placeholders
        self.errors: list[ConfigError] = []

    def where(self, path: KeyPath, *, key: bool = False) -> tuple[int, int]:
        """Line and column of the key or value at ``path`` (0, 0 without a source map)."""
        if self.source_map is None:
            return 0, 0
        pos = self.source_map.key(path) if key else self.source_map.value(path)
        return (pos.line, pos.col) if pos is not None else (0, 0)

    def at(self, path: KeyPath, *, key: bool = False) -> str:
        """`` at LINE:COL`` for a message, or ``""`` without a source map."""
        line, col = self.where(path, key=key)
        return f" at {line}:{col}" if line else ""

    def error(self, path: KeyPath, message: str, *, key: bool = False) -> None:
        """Record an error positioned at the key or value of ``path``."""
        line, col = self.where(path, key=key)
        self.errors.append(ConfigError(self.file, line, col, path, message))

    # ------------------------------------------------------------------ helpers

    def dependency_refs(self, name: str, task: Task) -> Iterator[tuple[str, KeyPath, bool]]:
        """(dependency name, path, position-at-key) for each entry of ``depends_on``."""
        if isinstance(task.depends_on, list):
            for i, dep in enumerate(task.depends_on):
                yield dep, ("tasks", name, "depends_on", i), False
        else:
            for dep in task.depends_on:
                yield dep, ("tasks", name, "depends_on", dep), True

    def stdin_refs(self, name: str, task: Task) -> Iterator[tuple[str, KeyPath]]:
        """(stream reference, path) for each ``stdin.from`` entry."""
        if task.stdin is None or task.stdin.from_ is None:
            return
        if isinstance(task.stdin.from_, str):
            yield task.stdin.from_, ("tasks", name, "stdin", "from")
        else:
            for i, ref in enumerate(task.stdin.from_):
                yield ref, ("tasks", name, "stdin", "from", i)

    # ------------------------------------------------------------------ checks

    def run(self, graph: TaskGraph) -> list[ConfigError]:
        """Run every check and return the errors."""
        self.check_references()
        self.check_cycles(graph)
        self.check_conditions()
        self.check_ports()
        self.check_tasks()
        return self.errors

    def check_references(self) -> None:
        """Names that must exist: tasks, observers, environments, hosts."""
        project = self.project
        tasks = list(project.tasks)
        for name, task in project.tasks.items():
            for dep, path, at_key in self.dependency_refs(name, task):
                if dep == name:
                    self.error(path, f"task {name!r} depends on itself", key=at_key)
                elif dep not in project.tasks:
                    hint = did_you_mean(dep, tasks, "tasks")
                    self.error(path, f"depends on unknown task {dep!r}{hint}", key=at_key)
            for i, trigger in enumerate(task.triggers):
                if trigger not in project.observers:
                    hint = did_you_mean(trigger, project.observers, "observers")
                    self.error(
                        ("tasks", name, "triggers", i), f"unknown observer {trigger!r}{hint}"
                    )
            for ref, path in self.stdin_refs(name, task):
                producer = ref.partition(".")[0]
                if producer == name:
                    self.error(path, f"task {name!r} cannot read its own output on stdin")
                elif producer not in project.tasks:
                    hint = did_you_mean(producer, tasks, "tasks")
                    self.error(path, f"stdin reads from unknown task {producer!r}{hint}")
            if task.environment is not None and task.environment not in project.environments:
                hint = did_you_mean(task.environment, project.environments, "environments")
                self.error(
                    ("tasks", name, "environment"),
                    f"unknown environment {task.environment!r}{hint}",
                )
            self.check_host_selector(name, task)
        for obs_name, observer in project.observers.items():
            if obs_name in self.placeholders.observers:
                continue
            for kind, watched in (("task", observer.task), ("log", observer.log)):
                if watched is not None and watched.task not in project.tasks:
                    hint = did_you_mean(watched.task, tasks, "tasks")
                    self.error(
                        ("observers", obs_name, kind, "task"),
                        f"watches unknown task {watched.task!r}{hint}",
                    )
        for host_name, host in project.hosts.items():
            if host_name in self.placeholders.hosts:
                continue
            if host.environment is not None and host.environment not in project.environments:
                hint = did_you_mean(host.environment, project.environments, "environments")
                self.error(
                    ("hosts", host_name, "environment"),
                    f"unknown environment {host.environment!r}{hint}",
                )

    def check_host_selector(self, name: str, task: Task) -> None:
        """``hosts``: every listed host exists; a label selector matches at least one."""
        hosts = self.project.hosts
        if task.hosts is None:
            return
        if isinstance(task.hosts, list):
            for i, host in enumerate(task.hosts):
                if host not in hosts:
                    hint = did_you_mean(host, hosts, "hosts")
                    self.error(("tasks", name, "hosts", i), f"unknown host {host!r}{hint}")
            return
        selector = task.hosts
        matches = [
            h
            for h, host in hosts.items()
            if all(host.labels.get(k) == v for k, v in selector.items())
        ]
        if not matches and not self.placeholders.hosts:
            # (an invalid host's labels are unknown: it might be the one that matches)
            shown = ", ".join(f"{k}={v}" for k, v in selector.items()) or "(empty)"
            known = sorted({f"{k}={v}" for host in hosts.values() for k, v in host.labels.items()})
            hint = (
                f"; labels in use: {', '.join(known[:12])}" if known else "; no hosts have labels"
            )
            if not hosts:
                hint = "; no hosts are defined"
            self.error(("tasks", name, "hosts"), f"host selector {shown} matches no host{hint}")

    def edge_note(self, task: str, dep: str) -> str:
        """``a -> b at 12:7`` for the edge where ``task`` names ``dep`` in depends_on."""
        depends_on = self.project.tasks[task].depends_on
        if isinstance(depends_on, list):
            path: KeyPath = ("tasks", task, "depends_on", depends_on.index(dep))
            return f"{task} -> {dep}{self.at(path)}"
        return f"{task} -> {dep}{self.at(('tasks', task, 'depends_on', dep), key=True)}"

    def pipe_note(self, task: str, producer: str) -> str:
        """``a reads b.stdout at 3:5`` for the stdin entry of ``task`` reading ``producer``."""
        for ref, path in self.stdin_refs(task, self.project.tasks[task]):
            if ref.partition(".")[0] == producer:
                return f"{task} reads {ref}{self.at(path)}"
        return f"{task} reads {producer}"

    def check_cycles(self, graph: TaskGraph) -> None:
        """Dependency cycles and pipe cycles, each reported once with every edge's position."""
        for cycle in graph.cycles():
            if len(cycle) == 2:
                continue  # a self-dependency, reported by check_references
            notes = ", ".join(self.edge_note(a, b) for a, b in pairwise(cycle))
            first, second = cycle[0], cycle[1]
            depends_on = self.project.tasks[first].depends_on
            if isinstance(depends_on, list):
                path: KeyPath = ("tasks", first, "depends_on", depends_on.index(second))
                at_key = False
            else:
                path, at_key = ("tasks", first, "depends_on", second), True
            self.error(path, f"dependency cycle: {' -> '.join(cycle)} ({notes})", key=at_key)
        for cycle in graph.pipe_cycles():
            if len(cycle) == 2:
                continue  # reading its own output, reported by check_references
            notes = ", ".join(self.pipe_note(a, b) for a, b in pairwise(cycle))
            first, second = cycle[0], cycle[1]
            path = next(
                p
                for ref, p in self.stdin_refs(first, self.project.tasks[first])
                if ref.partition(".")[0] == second
            )
            self.error(path, f"stdin pipes form a cycle: {' -> '.join(cycle)} ({notes})")

    def check_conditions(self) -> None:
        """Dependency conditions the dependency can actually reach."""
        tasks = self.project.tasks
        for name, task in tasks.items():
            if isinstance(task.depends_on, list):
                continue  # the list form means `started`, always reachable
            for dep, spec in task.depends_on.items():
                target = tasks.get(dep)
                if target is None or dep == name or dep in self.placeholders.tasks:
                    continue
                path: KeyPath = ("tasks", name, "depends_on", dep, "condition")
                cond = spec.condition
                if cond == "healthy" and target.health is None:
                    self.error(
                        path,
                        f"condition 'healthy' needs a health check, but task {dep!r} has no "
                        f"'health' (add tasks.{dep}.health, or use condition 'started')",
                    )
                elif cond == "log_ready" and target.ready_log is None:
                    self.error(
                        path,
                        f"condition 'log_ready' needs a ready line, but task {dep!r} has no "
                        f"'ready_log' (add tasks.{dep}.ready_log)",
                    )
                elif cond in ("completed", "succeeded") and target.kind == "service":
                    self.error(
                        path,
                        f"condition {cond!r} needs a job, but task {dep!r} is a service; only "
                        f"jobs complete (set tasks.{dep}.kind: job, or use 'started' or "
                        "'healthy')",
                    )

    def check_ports(self) -> None:
        """No port number declared twice."""
        owners: dict[int, tuple[str, str]] = {}
        for name, task in self.project.tasks.items():
            if name in self.placeholders.tasks:
                continue
            for port_name, port in task.ports.items():
                path: KeyPath = ("tasks", name, "ports", port_name)
                first = owners.get(port)
                if first is None:
                    owners[port] = (name, port_name)
                    continue
                other: KeyPath = ("tasks", first[0], "ports", first[1])
                line, _ = self.where(other)
                where = f" (line {line})" if line else ""
                self.error(
                    path,
                    f"port {port} is already declared by tasks.{first[0]}.ports.{first[1]}{where}",
                )

    def check_tasks(self) -> None:
        """Per-task rules: commands, liveness, ``${ports.NAME}`` references."""
        for name, task in self.project.tasks.items():
            if name in self.placeholders.tasks:
                continue
            if task.cmd is None and not self.has_build_layer(task):
                self.error(
                    ("tasks", name),
                    "'cmd' is missing (only a task running in an environment with a docker "
                    "build layer may leave it out)",
                    key=True,
                )
            if task.kind == "job" and task.liveness is not None:
                self.error(
                    ("tasks", name, "liveness"),
                    "a job cannot have a liveness check (it is expected to finish); use "
                    "'timeout' to bound its run",
                    key=True,
                )
            for path, text in self.port_texts(name, task):
                for match in _PORT_REF.finditer(text):
                    port_name = match.group(1)
                    if port_name in task.ports:
                        continue
                    if task.ports:
                        hint = did_you_mean(port_name, task.ports, "ports")
                    else:
                        hint = f"; declare it under tasks.{name}.ports"
                    self.error(path, f"${{ports.{port_name}}} names no port of task {name!r}{hint}")

    def has_build_layer(self, task: Task) -> bool:
        """Whether ``task`` runs in an environment whose layers build a docker image."""
        if task.environment is None:
            return False
        env = self.project.environments.get(task.environment)
        if env is None:
            return True  # the unknown environment is the error to report
        if task.environment in self.placeholders.environments:
            return True  # its layers are unknown
        return any(layer.docker is not None and layer.docker.build for layer in env.layers)

    @staticmethod
    def port_texts(name: str, task: Task) -> Iterator[tuple[KeyPath, str]]:
        """Every text where ``${ports.NAME}`` may appear, with its path."""
        base: KeyPath = ("tasks", name)
        yield from _command_texts((*base, "cmd"), task.cmd)
        for key, value in task.env.items():
            yield (*base, "env", key), value
        for field in ("health", "liveness"):
            check: HealthCheck | None = getattr(task, field)
            if check is None:
                continue
            yield from _command_texts((*base, field, "exec"), check.exec)
            for kind in ("http", "tcp", "log"):
                value = getattr(check, kind)
                if isinstance(value, str):
                    yield (*base, field, kind), value
        yield from _command_texts((*base, "stop", "command"), task.stop.command)


def _command_texts(path: KeyPath, cmd: str | list[str] | None) -> Iterator[tuple[KeyPath, str]]:
    if isinstance(cmd, str):
        yield path, cmd
    elif cmd is not None:
        for i, arg in enumerate(cmd):
            yield (*path, i), arg


def check_project(
    project: Project,
    source_map: SourceMap | None,
    file: str,
    *,
    placeholders: Placeholders | None = None,
) -> list[ConfigError]:
    """Check what spans models: references, cycles, conditions, ports and commands.

    Args:
        project: The validated model, or (with ``placeholders``) the part of a project
            that validated, with stand-ins for the invalid entries.
        source_map: Positions of keys and values (YAML), or None (Python configs: every
            error then has line and column 0).
        file: The file name as the user gave it, for the errors.
        placeholders: The stand-ins of ``project``: their names count as defined, their
            edges are checked, their content is not.

    Returns:
        Every problem found, in no particular order (``ConfigErrors`` sorts them).
    """
    checker = _Checker(project, source_map, file, placeholders or Placeholders())
    return checker.run(TaskGraph.from_project(project))
