"""The task graph of a project: dependency, trigger and pipe edges, order, levels and closures.

Pure functions over a validated :class:`~devster_tui.config.schema.Project`, with no I/O, so
the engine (start order, restart cascades), the semantic checks (cycles) and ``devster graph``
all agree on one reading of the file.  Every edge points downstream: from the dependency to
the dependent, from the observer to the task it triggers, from the producer to the consumer
of a pipe.  Edges naming unknown tasks are left out here; the checks report them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from devster_tui.config.schema import Project, Task

EdgeKind = Literal["dependency", "trigger", "pipe"]
"""The three kinds of edges: ``dependency`` (depends_on), ``trigger``, ``pipe`` (stdin from)."""

EDGE_KINDS: tuple[EdgeKind, ...] = ("dependency", "trigger", "pipe")
"""Every edge kind, in the order they are listed."""

MAX_CYCLES = 100
"""At most this many cycles are enumerated (the count of cycles can grow exponentially)."""


@dataclass(frozen=True, slots=True)
class Edge:
    """One edge of the graph, pointing downstream."""

    source: str
    """Upstream end: the dependency, the observer, or the producing task."""
    target: str
    """Downstream end: the dependent task, the triggered task, or the consuming task."""
    kind: EdgeKind
    """``dependency``, ``trigger`` or ``pipe``."""
    condition: str | None = None
    """Dependency edges: what the dependency must reach (``started``, ``healthy`` ...)."""
    on_restart: str | None = None
    """Dependency edges: what a restart of the dependency does to the dependent."""
    on_restart_set: bool = False
    """Dependency edges: whether ``on_restart`` was written (else it follows the kind)."""
    on_failure: str | None = None
    """Dependency edges: what a failure of the dependency does to the dependent."""
    observer_kind: str | None = None
    """Trigger edges: the observer's kind (``files``, ``manual``, ``task``, ``log``,
    ``interval``)."""
    watched: str | None = None
    """Trigger edges from ``task`` and ``log`` observers: the task the observer watches."""
    stream: str | None = None
    """Pipe edges: ``stdout``, ``stderr`` or ``both``."""


class CycleError(ValueError):
    """The dependency graph has a cycle, so there is no start order."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        """The cycle as a path whose first and last names are equal, e.g. ``[a, b, a]``."""
        super().__init__("dependency cycle: " + " -> ".join(cycle))


def in_profiles(task: Task, active: Iterable[str]) -> bool:
    """Whether ``task`` runs under the ``active`` profiles: it names none, or one of them."""
    return not task.profiles or not set(task.profiles).isdisjoint(active)


def with_profiles(project: Project, active: Iterable[str]) -> Project:
    """``project`` as ``devster up`` runs it under ``active``: tasks of other profiles left out
    (so are the edges that reach them, in :meth:`TaskGraph.from_project`)."""
    chosen = tuple(active)
    tasks = {name: task for name, task in project.tasks.items() if in_profiles(task, chosen)}
    return project.model_copy(update={"tasks": tasks})


def _split_stream(ref: str) -> tuple[str, str]:
    """``api.stderr`` -> ``("api", "stderr")``; ``api`` -> ``("api", "both")``."""
    task, dot, stream = ref.partition(".")
    return task, stream if dot else "both"


@dataclass(frozen=True, slots=True)
class TaskGraph:
    """The graph of one project.  Build it with :meth:`from_project`."""

    tasks: tuple[str, ...]
    """Task names in definition order."""
    observers: tuple[str, ...]
    """Observer names in definition order."""
    observer_kinds: dict[str, str]
    """Observer name -> kind."""
    watches: dict[str, str]
    """``task`` and ``log`` observer name -> the (known) task it watches."""
    edges: tuple[Edge, ...]
    """Every edge between known names: per task in definition order, its dependency edges,
    then its trigger edges, then its pipe edges."""
    _index: dict[str, int] = field(repr=False, compare=False)
    _deps: dict[str, tuple[str, ...]] = field(repr=False, compare=False)
    _dependents: dict[str, tuple[str, ...]] = field(repr=False, compare=False)
    _producers: dict[str, tuple[str, ...]] = field(repr=False, compare=False)

    @classmethod
    def from_project(cls, project: Project) -> TaskGraph:
        """Build the graph of ``project``; references to unknown names are skipped.

        Args:
            project: A project (it need not have passed the semantic checks).

        Returns:
            The graph.
        """
        names = tuple(project.tasks)
        known = set(names)
        observer_kinds = {name: obs.kind for name, obs in project.observers.items()}
        watches: dict[str, str] = {}
        for obs_name, obs in project.observers.items():
            watched_spec = obs.task or obs.log
            if watched_spec is not None and watched_spec.task in known:
                watches[obs_name] = watched_spec.task
        edges: list[Edge] = []
        deps: dict[str, list[str]] = {n: [] for n in names}
        dependents: dict[str, list[str]] = {n: [] for n in names}
        producers: dict[str, list[str]] = {n: [] for n in names}
        for name, task in project.tasks.items():
            for dep, spec in task.dependencies.items():
                if dep not in known or dep in deps[name]:
                    continue
                deps[name].append(dep)
                dependents[dep].append(name)
                edges.append(
                    Edge(
                        dep,
                        name,
                        "dependency",
                        condition=spec.condition,
                        on_restart=spec.restart_rule(project.tasks[dep].kind),
                        on_restart_set=spec.on_restart is not None,
                        on_failure=spec.on_failure,
                    )
                )
            for obs_name in dict.fromkeys(task.triggers):
                observer = project.observers.get(obs_name)
                if observer is None:
                    continue
                edges.append(
                    Edge(
                        obs_name,
                        name,
                        "trigger",
                        observer_kind=observer.kind,
                        watched=watches.get(obs_name),
                    )
                )
            if task.stdin is not None:
                for ref in dict.fromkeys(task.stdin.sources):
                    producer, stream = _split_stream(ref)
                    if producer not in known:
                        continue
                    if producer not in producers[name]:
                        producers[name].append(producer)
                    edges.append(Edge(producer, name, "pipe", stream=stream))
        return cls(
            tasks=names,
            observers=tuple(project.observers),
            observer_kinds=observer_kinds,
            watches=watches,
            edges=tuple(edges),
            _index={n: i for i, n in enumerate(names)},
            _deps={n: tuple(v) for n, v in deps.items()},
            _dependents={n: tuple(v) for n, v in dependents.items()},
            _producers={n: tuple(v) for n, v in producers.items()},
        )

    # ------------------------------------------------------------------ queries

    def _check(self, name: str) -> None:
        if name not in self._index:
            raise KeyError(f"unknown task {name!r}")

    def edges_of(self, kind: EdgeKind) -> tuple[Edge, ...]:
        """The edges of one kind, in graph order."""
        return tuple(e for e in self.edges if e.kind == kind)

    def dependencies(self, name: str) -> tuple[str, ...]:
        """Direct dependencies of ``name`` (what it depends on), in the order written.

        Raises:
            KeyError: for an unknown task.
        """
        self._check(name)
        return self._deps[name]

    def direct_dependents(self, name: str) -> tuple[str, ...]:
        """Tasks that depend on ``name`` directly, in definition order.

        Raises:
            KeyError: for an unknown task.
        """
        self._check(name)
        return self._dependents[name]

    def dependents(self, name: str) -> list[str]:
        """Every task that depends on ``name``, directly or transitively, in start order.

        This is the set a restart of ``name`` may cascade to.

        Raises:
            KeyError: for an unknown task.
        """
        self._check(name)
        seen: set[str] = set()
        stack = list(self._dependents[name])
        while stack:
            current = stack.pop()
            if current in seen or current == name:
                continue
            seen.add(current)
            stack.extend(self._dependents[current])
        return self._sorted(seen)

    def producers(self, name: str) -> tuple[str, ...]:
        """Tasks whose output ``name`` reads on its stdin.

        Raises:
            KeyError: for an unknown task.
        """
        self._check(name)
        return self._producers[name]

    def triggered_by(self, observer: str) -> tuple[str, ...]:
        """Tasks that ``observer`` triggers, in definition order."""
        return tuple(e.target for e in self.edges if e.kind == "trigger" and e.source == observer)

    def closure(self, selection: Iterable[str], *, pipes: bool = True) -> list[str]:
        """The tasks needed to run ``selection``: the selection plus everything it depends on.

        ``devster up api`` starts this set.  With ``pipes`` (the default), the producers that
        feed a selected task's stdin are needed too (and what they depend on).

        Args:
            selection: Task names.
            pipes: Also follow pipe edges upstream.

        Returns:
            The closure, in start order (or definition order if there is a cycle).

        Raises:
            KeyError: for an unknown task name in ``selection``.
        """
        seen: set[str] = set()
        stack = list(selection)
        for name in stack:
            self._check(name)
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            stack.extend(self._deps[current])
            if pipes:
                stack.extend(self._producers[current])
        return self._sorted(seen)

    def _sorted(self, names: Iterable[str]) -> list[str]:
        chosen = set(names)
        try:
            return [n for n in self.order() if n in chosen]
        except CycleError:
            return sorted(chosen, key=self._index.__getitem__)

    # ------------------------------------------------------------------ order

    def order(self) -> list[str]:
        """Topological start order: dependencies first, definition order among equals.

        Raises:
            CycleError: when the dependencies form a cycle.
        """
        remaining = {n: len(self._deps[n]) for n in self.tasks}
        ready = [self._index[n] for n in self.tasks if remaining[n] == 0]
        heapq.heapify(ready)
        out: list[str] = []
        while ready:
            name = self.tasks[heapq.heappop(ready)]
            out.append(name)
            for dependent in self._dependents[name]:
                remaining[dependent] -= 1
                if remaining[dependent] == 0:
                    heapq.heappush(ready, self._index[dependent])
        if len(out) != len(self.tasks):
            cycle = self.find_cycle()
            raise CycleError(cycle or [])
        return out

    def stop_order(self) -> list[str]:
        """Stop order: the reverse of :meth:`order` (dependents before their dependencies).

        Raises:
            CycleError: when the dependencies form a cycle.
        """
        return list(reversed(self.order()))

    def levels(self) -> list[list[str]]:
        """Tasks grouped for parallel start: level 0 needs nothing, level n needs only tasks
        of lower levels (at least one of level n-1); definition order within a level.

        Raises:
            CycleError: when the dependencies form a cycle.
        """
        depth: dict[str, int] = {}
        for name in self.order():
            depth[name] = 1 + max((depth[d] for d in self._deps[name]), default=-1)
        out: list[list[str]] = [[] for _ in range(1 + max(depth.values(), default=-1))]
        for name in self.tasks:
            out[depth[name]].append(name)
        return out

    # ------------------------------------------------------------------ cycles

    def find_cycle(self) -> list[str] | None:
        """The first dependency cycle, as a path ``[a, b, c, a]`` (a depends on b ...), or None."""
        cycles = self.cycles(limit=1)
        return cycles[0] if cycles else None

    def cycles(self, limit: int = MAX_CYCLES) -> list[list[str]]:
        """Every elementary dependency cycle (up to ``limit``), each once.

        Each cycle is a path that follows ``depends_on`` and ends where it starts, rotated to
        start at its task defined first: ``[a, b, c, a]`` means a depends on b, b on c, c on a.
        """
        return _elementary_cycles(self.tasks, self._deps, limit)

    def pipe_cycles(self, limit: int = MAX_CYCLES) -> list[list[str]]:
        """Every elementary cycle of stdin pipes (up to ``limit``), each once.

        ``[a, b, a]`` means a reads b's output and b reads a's.  A task reading its own
        output is the cycle ``[a, a]``.
        """
        return _elementary_cycles(self.tasks, self._producers, limit)


def _components(nodes: tuple[str, ...], succ: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """Strongly connected components (iterative Tarjan): node -> component id."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    comp: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(succ[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(succ[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp[member] = index[node]
                    if member == node:
                        break
    return comp


_SEARCH_BUDGET = 200_000
"""Steps the cycle enumeration may take before it stops with what it found."""


def _elementary_cycles(
    nodes: tuple[str, ...], succ: dict[str, tuple[str, ...]], limit: int
) -> list[list[str]]:
    """Enumerate elementary cycles, each rooted at its earliest node (so each appears once).

    The search only walks inside strongly connected components (so an acyclic graph costs
    linear time), and for every start node s only through nodes defined after s.  Bounded
    by ``limit`` cycles and a step budget.
    """
    index = {n: i for i, n in enumerate(nodes)}
    comp = _components(nodes, succ)
    found: list[list[str]] = []
    budget = _SEARCH_BUDGET
    for start in nodes:
        if len(found) >= limit or budget <= 0:
            break
        s_index = index[start]
        s_comp = comp[start]
        path: list[str] = [start]
        on_path = {start}
        iters: list[Iterator[str]] = [iter(succ[start])]
        while iters and len(found) < limit and budget > 0:
            budget -= 1
            nxt = next(iters[-1], None)
            if nxt is None:
                iters.pop()
                on_path.discard(path.pop())
                continue
            if nxt == start:
                found.append([*path, start])
                continue
            if comp[nxt] != s_comp or index[nxt] < s_index or nxt in on_path:
                continue
            path.append(nxt)
            on_path.add(nxt)
            iters.append(iter(succ[nxt]))
    return found
