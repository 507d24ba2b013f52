"""Wiring one engine's tasks to what carries them out: executors, environments, runners.

Why apart from the supervisor: which executor a task's spawns go to (the local executor
with its process records, or the layer chain of docker and ssh hops it runs through), what
environment it gets (variables, its environment's ``env``, ``env_file``, its own ``env``,
secrets substituted) and how each runner is set up (its gate, its stdin pipe) is decided
once, at start, from the project.  The wiring also ends what an earlier engine left behind
(its process records) and announces the tasks (``task.defined``).  The supervisor only
asks for the runners and, at the end, for everything here to be closed.  Nothing here
decides a lifecycle rule.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal as _signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from devster_tui import __version__
from devster_tui.config.schema import Task
from devster_tui.engine.context import RunnerContext, StateWaiter
from devster_tui.engine.gates import Gates
from devster_tui.engine.masking import task_config
from devster_tui.engine.pipes import wants_pipe
from devster_tui.engine.protocols import RunnerHandle
from devster_tui.engine.runner import TaskRunner
from devster_tui.executors.base import Executor, Process
from devster_tui.state.clock import Clock
from devster_tui.state.events import T
from devster_tui.state.output import OutputStore
from devster_tui.state.payloads import TaskDefined
from devster_tui.state.store import Store

if TYPE_CHECKING:
    from devster_tui.config.loader import LoadedProject
    from devster_tui.config.secrets import SecretValues
    from devster_tui.engine.fanout import LayerRouter
    from devster_tui.engine.procs import OrphanInfo, ProcRegistry
    from devster_tui.executors.contain import KillNotice


class Wiring:
    """The executors one engine made and the runners it built on them."""

    def __init__(
        self,
        loaded: LoadedProject,
        tasks: Mapping[str, Task],
        host_of: Mapping[str, str],
        store: Store,
        state_dir: Path,
        executor: Executor | None,
    ) -> None:
        """Prepare the wiring; no executor is made until :meth:`runners`.

        Args:
            loaded: The project.
            tasks: The active tasks (fan-out instances included).
            host_of: Fan-out instance name -> host name.
            store: Where notices of the executors go.
            state_dir: Where the local executor's process records go.
            executor: The executor to use (None: a local executor, owned and closed here).
        """
        self._loaded = loaded
        self._tasks = tasks
        self._host_of = host_of
        self._store = store
        self._state_dir = state_dir
        self._executor = executor
        self._owned: Executor | None = None
        self._registry: ProcRegistry | None = None
        self._router: LayerRouter | None = None

    # ------------------------------------------------------------------ executors

    def _base_executor(self) -> Executor:
        if self._executor is None:
            from devster_tui.engine.procs import ProcRegistry
            from devster_tui.executors.local import LocalExecutor

            self._registry = ProcRegistry(self._state_dir)
            local = LocalExecutor(listener=self._registry, on_kill=self.process_killed)
            self._executor = self._owned = local
        return self._executor

    def process_killed(self, notice: KillNotice) -> None:
        """The local executor SIGKILLed a process or ended an escapee: a ``task.killed``."""
        name, _, part = notice.task.partition(":")
        self._store.dispatch(
            T.TASK_KILLED,
            name if name in self._tasks else None,
            pid=notice.pid,
            name=notice.name,
            signal=_signal.Signals(notice.signal).name,
            why=notice.why,
            process=part or "task",
        )

    def _layered(self, local: Executor, secrets: SecretValues | None) -> Executor:
        """Route tasks that run through layers (docker, ssh) to their own executors."""
        from devster_tui.engine.fanout import build_router
        from devster_tui.engine.secrets import with_layer_secrets

        loaded = self._loaded
        project = loaded.project.model_copy(update={"tasks": dict(self._tasks)})
        project = with_layer_secrets(project, secrets)  # credentials for executors only
        self._router = build_router(
            local,
            project,
            self._tasks,
            self._host_of,
            loaded.variables,
            loaded.root,
            self._layer_notice,
        )
        return self._router if self._router.routes else local

    def _layer_notice(self, task: str, state: str, detail: str) -> None:
        if state == "warning":
            self._store.dispatch(T.WARNING, task, message=f"{task}: {detail}")
        elif state == "waiting":
            self._store.dispatch(T.TASK_WAITING, task, reason=detail, on=[])
        else:
            self._store.dispatch(T.TASK_LINK, task, state=state, detail=detail)

    async def aclose(self) -> None:
        """Close the layer router's executors, then the executor made here and its
        process records (an executor handed in is its giver's to close)."""
        if self._router is not None:
            await self._router.aclose()
        if self._owned is not None:
            await self._owned.aclose()
        if self._registry is not None:
            self._registry.close()

    async def end_orphans(self) -> list[OrphanInfo]:
        """End what an earlier engine of this state directory left running (in a thread:
        it waits for the processes to go)."""
        from devster_tui.engine.procs import cleanup_orphans

        return await asyncio.to_thread(cleanup_orphans, self._state_dir)

    def report_orphans(self, orphans: Sequence[OrphanInfo]) -> None:
        """An ``orphan.killed`` per ended group, and a ``task.killed`` per process."""
        from devster_tui.executors.contain import KillNotice

        for orphan in orphans:
            self._store.dispatch(T.ORPHAN_KILLED, orphan.task, pid=orphan.pid, pgid=orphan.pgid)
            for pid in orphan.killed:
                self.process_killed(KillNotice(orphan.task, pid, "", _signal.SIGKILL, "orphan"))

    # ------------------------------------------------------------------ runners

    def announce(self) -> None:
        """``engine.started``, then a ``task.defined`` per task (what clients draw)."""
        loaded, tasks = self._loaded, self._tasks
        self._store.dispatch(
            T.ENGINE_STARTED,
            project=loaded.project.name or loaded.root.name,
            config_file=str(loaded.file),
            pid=os.getpid(),
            tasks=list(tasks),
            version=__version__,
        )
        for name, task in tasks.items():
            data = defined_data(task, tasks)
            data["host"] = self._host_of.get(name)
            self._store.dispatch(T.TASK_DEFINED, name, **data)

    def task_env(self, task: Task, secrets: SecretValues | None) -> dict[str, str]:
        """The complete environment of ``task``'s processes (ports not yet substituted)."""
        loaded = self._loaded
        env = dict(os.environ)
        env.update(loaded.variables)
        if task.environment is not None:
            environment = loaded.project.environments.get(task.environment)
            if environment is not None:
                env.update(environment.env)
        if task.env_file is not None:
            from devster_tui.config.envfile import read_env_file

            files = [task.env_file] if isinstance(task.env_file, str) else task.env_file
            for name in files:
                env.update(read_env_file(loaded.root / name))
        env.update(task.env)
        from devster_tui.engine.secrets import substitute_env

        return substitute_env(env, secrets)

    def runners(
        self,
        *,
        output: OutputStore,
        clock: Clock,
        waiter: StateWaiter,
        rng: random.Random,
        secrets: SecretValues | None,
        gates: Gates,
        on_output_activity: Callable[[], None],
        on_settled: Callable[[RunnerHandle], None],
        on_process: Callable[[RunnerHandle, Process | None], None],
    ) -> dict[str, TaskRunner]:
        """Make the executors and one runner per task (in definition order).

        Args:
            output: Where the runners' output goes.
            clock: The engine's clock.
            waiter: Wakes the runners' waits on state changes.
            rng: Backoff jitter.
            secrets: The resolved secrets (environments, layer credentials, redaction in
                executors).
            gates: The manual gates (a gated task's runner holds at its gate).
            on_output_activity: Called after each output chunk is stored.
            on_settled: Called whenever a runner's lifecycle ends.
            on_process: Called with each spawned process, and with None once it exited.

        Returns:
            Task name -> its runner.
        """
        from devster_tui.engine.ports import check_ports

        ctx = RunnerContext(
            store=self._store,
            output=output,
            executor=self._layered(self._base_executor(), secrets),
            clock=clock,
            root=self._loaded.root,
            waiter=waiter,
            check_ports=check_ports,
            rng=rng,
            on_output_activity=on_output_activity,
            on_settled=on_settled,
            on_process=on_process,
            secret_values=secrets.reveal() if secrets is not None else {},
        )
        known = frozenset(self._tasks)
        runners: dict[str, TaskRunner] = {}
        for name, task in self._tasks.items():
            runner = TaskRunner(name, task, ctx, self.task_env(task, secrets), known)
            runner.stdin_pipe = wants_pipe(task)
            if gates.gated(name):
                runner.hold = gates.hold
            runners[name] = runner
        return runners


def defined_data(task: Task, tasks: Mapping[str, Task]) -> TaskDefined:
    """The payload of ``task.defined`` for ``task`` (``host`` is set by the caller)."""
    return {
        "kind": task.kind,
        "depends_on": {d: spec.condition for d, spec in task.dependencies.items() if d in tasks},
        "triggers": list(task.triggers),
        "mode": task.mode,
        "has_health": task.health is not None,
        "ports": dict(task.ports),
        "host": None,
        "autostart": task.autostart,
        "restart_policy": task.restart.policy,
        "stdin": _stdin_sources(task),
        "environment": task.environment,
        "config": task_config(task),
    }


def _stdin_sources(task: Task) -> list[str]:
    if task.stdin is None:
        return []
    return [*task.stdin.sources, *(["console"] if task.stdin.console else [])]
