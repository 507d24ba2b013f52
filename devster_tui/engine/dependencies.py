"""Carrying out the dependency rules: when a dependent may start, and what a dependency's
event does to its dependents.

The decisions are :func:`~devster_tui.engine.policy.condition_state` and
:func:`~devster_tui.engine.policy.on_dependency_event` (the condition and dependency
tables of docs/lifecycle.md).  This module only feeds them: :func:`wait_for_dependencies`
re-evaluates a dependent's conditions on every state change until they are met, cannot be
met or time out (``blocked``); :class:`DependencyRules` turns store events into the second
function's inputs (which event, which run, the run each dependent saw when it started) and
carries the answer out: a restart or a stop of the dependent, shown as its ordinary status
line (``restarting: dependency api restarted``), never as a warning.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from devster_tui.engine.policy import (
    DependencyEvent,
    StopReason,
    condition_state,
    dependency_timeout,
    on_dependency_event,
)
from devster_tui.engine.protocols import EngineCore, RunnerHandle
from devster_tui.state.events import Event, T
from devster_tui.state.model import EngineState, Status

if TYPE_CHECKING:
    from devster_tui.config.graph import TaskGraph
    from devster_tui.config.schema import Dependency
    from devster_tui.engine.context import RunnerContext


async def wait_for_dependencies(
    name: str, deps: Mapping[str, Dependency], ctx: RunnerContext
) -> bool:
    """Wait until every dependency of task ``name`` meets its condition.

    Announces ``task.waiting`` once (naming what it waits for), and ``task.blocked`` when a
    dependency can no longer meet its condition or its edge's ``timeout`` ran out.

    Args:
        name: The dependent task.
        deps: Its dependency edges (dependency name -> edge).
        ctx: The runners' shared context (store, clock, waiter).

    Returns:
        True once every condition is met, False when the task is blocked.
    """
    store = ctx.store
    started = ctx.clock.monotonic()
    announced = False
    while True:
        state = store.state
        unmet: list[tuple[str, str, float | None]] = []
        for dep, spec in deps.items():
            verdict, why = condition_state(state.tasks.get(dep), spec.condition)
            if verdict == "impossible":
                store.dispatch(T.TASK_BLOCKED, name, reason=f"dependency {dep} {why}", on=[dep])
                return False
            if verdict == "wait":
                unmet.append(
                    (dep, spec.condition, dependency_timeout(spec.timeout, spec.condition))
                )
        if not unmet:
            return True
        elapsed = ctx.clock.monotonic() - started
        remaining: list[float] = []
        for dep, condition, limit in unmet:
            if limit is None:
                continue
            if elapsed >= limit:
                store.dispatch(
                    T.TASK_BLOCKED,
                    name,
                    reason=f"dependency {dep} not {condition} after {limit:g}s",
                    on=[dep],
                )
                return False
            remaining.append(limit - elapsed)
        if not announced:
            announced = True
            names = ", ".join(f"{d} ({c})" for d, c, _ in unmet)
            store.dispatch(
                T.TASK_WAITING, name, reason=f"waiting for {names}", on=[d for d, _, _ in unmet]
            )
        await ctx.waiter.changed(min(remaining) if remaining else None)


def dependency_event(event: Event) -> DependencyEvent | None:
    """The dependency event an engine event is, if any.

    A run starting counts (for a service) when it starts; a job's run when it succeeds;
    a failure is a failed job, a crash that the policy restarts or gives up on, a
    service that exited unsuccessfully, or a spawn error.
    """
    if event.type == T.TASK_STARTING:
        return "started"
    if event.type == T.TASK_SUCCEEDED:
        return "succeeded"
    if event.type in (T.TASK_FAILED, T.TASK_SPAWN_FAILED):
        return "failed"
    if event.type == T.TASK_EXITED:
        data = event.data
        if not data.get("success") and not data.get("stopped"):
            # An exit that ends in "failed" is announced by its task.failed event.
            if data.get("next") in ("backoff", "exited", None):
                return "failed"
    return None


def start_closure(
    graph: TaskGraph,
    runners: Mapping[str, RunnerHandle],
    state: EngineState,
    names: Sequence[str],
    reason: str,
) -> list[str]:
    """Start ``names`` plus the dependencies they need: those that never ran or were
    stopped (a dependency that ran and ended stays as it is; its condition decides).

    Args:
        graph: The task graph.
        runners: Task name -> its runner.
        state: The engine state now.
        names: The tasks asked for (started with ``reason``; dependencies with ``start``).
        reason: The start reason of ``names``.

    Returns:
        The tasks started, in start order.
    """
    started: list[str] = []
    for name in graph.closure(names):
        runner = runners.get(name)
        if runner is None or runner.active:
            continue
        status = state.tasks[name].status if name in state.tasks else Status.DEFINED
        if name in names or status in (Status.DEFINED, Status.STOPPED):
            runner.start(reason if name in names else "start")
            started.append(name)
    return started


async def stop_in_reverse_order(
    graph: TaskGraph,
    runners: Mapping[str, RunnerHandle],
    tasks: Sequence[str],
    reason: StopReason,
    forced: Callable[[], bool],
) -> None:
    """Stop every active runner level by level, dependents first (a cyclic graph, which
    validation rejects, stops all at once); the runners of one level stop together.

    ``forced()`` is asked at each level: once it says so (a second Ctrl-C), the levels
    left are killed instead of stopped gracefully.
    """
    try:
        levels = graph.levels()
    except ValueError:
        levels = [list(tasks)]
    for level in reversed(levels):
        stopping = [runners[n] for n in level if n in runners]
        await asyncio.gather(*(r.stop(reason, force=forced()) for r in stopping if r.active))


class DependencyRules:
    """Applies each dependency edge's ``on_restart``/``on_failure`` rule."""

    def __init__(self, engine: EngineCore) -> None:
        """Serve ``engine``'s tasks."""
        self._engine = engine

    def on_event(self, event: Event) -> None:
        """React to one store event of task ``event.task`` (a possible dependency)."""
        dep = event.task
        engine = self._engine
        if dep is None or dep not in engine.tasks or engine.stopping:
            return
        what = dependency_event(event)
        if what is None:
            return
        kind = engine.tasks[dep].kind
        current = engine.store.state.tasks.get(dep)
        run = int(event.data.get("run") or (current.run if current is not None else 0))
        for name in engine.graph.direct_dependents(dep):
            task = engine.tasks.get(name)
            spec = task.dependencies.get(dep) if task is not None else None
            if spec is None:
                continue
            runner = engine.runner(name)
            action = on_dependency_event(
                event=what,
                dependency_kind=kind,
                run=run,
                seen_run=runner.seen_runs.get(dep, 0),
                on_restart=spec.on_restart,
                on_failure=spec.on_failure,
                dependent_live=runner.live,
            )
            verb = "failed" if what == "failed" else "restarted" if kind != "job" else "ran again"
            why = f"dependency {dep} {verb}"
            if action == "restart":
                engine.spawn(runner.restart(why), f"dependency restart of {name}")
            elif action == "stop":
                engine.spawn(runner.stop(StopReason.DEPENDENCY), f"dependency stop of {name}")
