"""Carrying out the dependency rules: what a dependency's event does to its dependents.

The decision is :func:`~devster_tui.engine.policy.on_dependency_event` (the dependency
table of docs/lifecycle.md); this module only turns store events into its inputs (which
event, which run, the run each dependent saw when it started) and carries the answer out:
a restart or a stop of the dependent, shown as its ordinary status line
(``restarting: dependency api restarted``), never as a warning.
"""

from __future__ import annotations

from devster_tui.engine.policy import DependencyEvent, StopReason, on_dependency_event
from devster_tui.engine.protocols import EngineCore
from devster_tui.state.events import Event, T


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
