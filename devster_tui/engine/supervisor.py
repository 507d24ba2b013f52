"""The engine: supervises every task of a loaded project and answers clients' commands.

Why this shape: the :class:`Engine` owns the store (state + event log), the output store
and one :class:`~devster_tui.engine.runner.TaskRunner` per task, and it is the only
:class:`~devster_tui.state.commands.Controller` clients talk to.  Runners start in
topological order by waiting for their own dependencies (so independent tasks start in
parallel), the dependency rules act when a dependency restarts or fails, and shutdown stops
tasks level by level in reverse order.  The engine composes its parts and decides nothing
itself: commands are a table (:mod:`~devster_tui.engine.commands`), executors and runners
are wired in :mod:`~devster_tui.engine.wiring`, and every rule is a pure function of
:mod:`~devster_tui.engine.policy`.  Nothing here formats text for people: everything
becomes an event, and clients (TUI, headless printer) render them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal as _signal
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devster_tui.config.graph import TaskGraph, in_profiles
from devster_tui.config.schema import Task
from devster_tui.engine import commands
from devster_tui.engine.background import spawn_guarded
from devster_tui.engine.context import Listeners, StateWaiter
from devster_tui.engine.dependencies import (
    DependencyRules,
    start_closure,
    stop_in_reverse_order,
)
from devster_tui.engine.gates import Gates
from devster_tui.engine.pipes import PipeManager
from devster_tui.engine.policy import EngineMode, StopReason, engine_done
from devster_tui.engine.protocols import RunnerHandle
from devster_tui.engine.runner import TaskRunner
from devster_tui.engine.triggers import TriggerHub
from devster_tui.engine.wiring import Wiring
from devster_tui.errors import ExitCode
from devster_tui.executors.base import Executor
from devster_tui.state.clock import Clock, SystemClock
from devster_tui.state.commands import Command, CommandResult
from devster_tui.state.eventlog import EventLog
from devster_tui.state.events import Event, T
from devster_tui.state.model import FAILED_STATUSES, EngineState, Status
from devster_tui.state.output import OutputStore
from devster_tui.state.store import Store

if TYPE_CHECKING:
    from devster_tui.config.loader import LoadedProject

log = logging.getLogger(__name__)

EXIT_OK = ExitCode.OK
"""Every task ended fine (or is still fine when the engine was asked to stop)."""
EXIT_FAILED = ExitCode.FAILED
"""A task failed, was blocked, or ended with an unsuccessful exit."""
EXIT_INTERRUPTED = ExitCode.SIGINT
"""Stopped by Ctrl-C (SIGINT)."""
EXIT_TERMINATED = ExitCode.SIGTERM
"""Stopped by SIGTERM."""
EXIT_HANGUP = ExitCode.SIGHUP
"""Stopped by SIGHUP (the terminal was closed)."""

_SIGNAL_EXITS: Mapping[int, int] = {
    _signal.SIGINT: EXIT_INTERRUPTED,
    _signal.SIGTERM: EXIT_TERMINATED,
    _signal.SIGHUP: EXIT_HANGUP,
}
"""The exit code of a shutdown a signal asked for."""


class Engine:
    """Supervisor + state store + output store for one project; a ``Controller``."""

    def __init__(
        self,
        loaded: LoadedProject,
        clock: Clock | None = None,
        executor: Executor | None = None,
        state_dir: Path | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        """Build an engine; nothing runs until :meth:`start`.

        Args:
            loaded: The validated project.
            clock: Time source for events and policy (default: system clocks).
            executor: Starts processes (default: the local executor).
            state_dir: Where the event log, output logs and process records go (default:
                the project's ``state_dir`` beside the project file).
            rng: Random source for backoff jitter.
        """
        self.loaded = loaded
        """The project being run."""
        project = loaded.project
        self.state_dir = state_dir if state_dir is not None else loaded.root / project.state_dir
        """Directory of the event log, output logs and process records (0700)."""
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        self.clock: Clock = clock if clock is not None else SystemClock()
        """The injected clock."""
        self.store = Store(self.clock, EventLog(self.state_dir / "events"))
        """State and event log."""
        self.output = OutputStore(
            self.state_dir / "logs",
            memory_lines=project.logs.memory_lines,
            max_bytes=project.logs.max_bytes,
            backups=project.logs.backups,
        )
        """Output of every task."""
        self.secrets = loaded.secrets
        """The values of ``secrets:`` (None until resolved; redacted everywhere)."""
        from devster_tui.engine.fanout import expand_hosts

        project, self.host_of = expand_hosts(project)
        """Fan-out instance name (``task@host``) -> host name."""
        self.graph = TaskGraph.from_project(project)
        """The task graph."""
        self.tasks: dict[str, Task] = {
            name: task for name, task in project.tasks.items() if self._profile_active(task)
        }
        """Tasks active under the current profiles, in definition order."""
        self.selected: list[str] = []
        """Tasks started by :meth:`start` (the selection's closure), in start order."""
        self.interrupted: int | None = None
        """The signal that asked the engine to stop (SIGINT/SIGTERM), if any."""
        self._rng = rng if rng is not None else random.Random()
        self._waiter = StateWaiter()
        self._runners: dict[str, TaskRunner] = {}
        self._settled = asyncio.Event()
        self._output_listeners = Listeners()
        self._shutdown_task: asyncio.Task[int] | None = None
        self._shutting_down = False
        self._force = False
        self._closed = False
        self._signals_installed = False
        self._wiring = Wiring(
            loaded, self.tasks, self.host_of, self.store, self.state_dir, executor
        )
        self.explicit_selection = False
        """Whether :meth:`start` was given task names (triggers then act on those only)."""
        self.gates = Gates(self.store, project.observers, self.tasks)
        """Manual gates."""
        self.triggers = TriggerHub(self)
        """Observers and their firing rules."""
        self.dependencies = DependencyRules(self)
        """The dependency edges' on_restart/on_failure rules."""
        self.pipes = PipeManager(
            self.store,
            self.output,
            self.tasks,
            loaded.root,
            lambda name: name in self._runners and self._runners[name].active,
        )
        """Stdin pipes, file stdin and console stdin."""
        self._unsubscribe = self.store.subscribe(self._on_event)

    # ------------------------------------------------------------------ setup

    def _profile_active(self, task: Task) -> bool:
        return in_profiles(task, self.loaded.profiles)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, selection: Sequence[str] = (), *, with_dependencies: bool = True) -> None:
        """Clean up orphans, announce the tasks and start the selection.

        Args:
            selection: Task names to start with what they depend on (empty: every task
                with ``autostart`` and what they depend on; a task behind a manual gate
                waits at its gate, and naming it in ``selection`` approves the gate once).
            with_dependencies: False (``up --no-deps``): start only ``selection``, without
                its dependencies and without waiting for their conditions.

        Raises:
            KeyError: for a task name that is not defined (or not active in the profiles).
        """
        unknown = [name for name in selection if name not in self.tasks]
        if unknown:
            raise KeyError(", ".join(unknown))
        from devster_tui.engine.secrets import prepare

        # A shutdown (a signal, devster down) may arrive during any await before the
        # tasks start: from then on start nothing, the shutdown has already stopped all.
        if self._shutting_down:
            return
        await prepare(self)
        if self._shutting_down:
            return
        orphans = await self._wiring.end_orphans()
        if self._shutting_down:
            return
        self._wiring.report_orphans(orphans)
        self._wiring.announce()
        self._runners = self._wiring.runners(
            output=self.output,
            clock=self.clock,
            waiter=self._waiter,
            rng=self._rng,
            secrets=self.secrets,
            gates=self.gates,
            on_output_activity=self._output_listeners.notify,
            on_settled=self._on_settled,
            on_process=lambda runner, proc: self.pipes.attach(runner.name, proc),
        )
        self.explicit_selection = bool(selection)
        for name in selection:
            self.gates.grant(name)  # naming a gated task on the command line approves it once
        roots = list(selection) or [n for n, t in self.tasks.items() if t.autostart]
        if with_dependencies or not selection:
            self.selected = [n for n in self.graph.closure(roots) if n in self.tasks]
        else:
            self.selected = list(dict.fromkeys(selection))
            for name in self.selected:
                self._runners[name].ignore_dependencies = True
        self.pipes.start()
        self.triggers.start()
        for name in self.selected:
            self._runners[name].start("start")

    def runner(self, name: str) -> TaskRunner:
        """The runner of task ``name``.

        Raises:
            KeyError: for an unknown task.
        """
        return self._runners[name]

    @property
    def runners(self) -> Mapping[str, TaskRunner]:
        """Task name -> its runner (empty until :meth:`start`)."""
        return self._runners

    @property
    def observer_targets(self) -> Mapping[str, Sequence[str]]:
        """Observer name -> the tasks it triggers."""
        return self.triggers.targets

    @property
    def finished(self) -> bool:
        """Whether no task lifecycle is active (nothing runs, waits or backs off)."""
        return not any(r.active for r in self._runners.values())

    async def wait_finished(self) -> None:
        """Wait until no task lifecycle is active."""
        await self.wait_tasks(list(self._runners))

    def can_be_started(self) -> bool:
        """Whether an armed observer can still start a task on its own (see
        :meth:`~devster_tui.engine.triggers.TriggerHub.can_start`)."""
        return self.triggers.can_start()

    async def wait_done(self, mode: EngineMode) -> None:
        """Wait until the engine should end on its own (see :func:`policy.engine_done`),
        or until a shutdown begins (a signal, ``devster down``)."""
        while not self._shutting_down and not engine_done(
            mode, any_active=not self.finished, can_be_started=self.can_be_started()
        ):
            self._settled.clear()
            changed = asyncio.ensure_future(self._waiter.changed())
            settled = asyncio.ensure_future(self._settled.wait())
            try:
                await asyncio.wait({changed, settled}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
                settled.cancel()

    async def wait_tasks(self, names: Sequence[str]) -> None:
        """Wait until the lifecycles of ``names`` have all ended."""
        while any(self._runners[n].active for n in names if n in self._runners):
            self._settled.clear()
            await self._settled.wait()

    def _on_settled(self, runner: RunnerHandle) -> None:
        self._settled.set()
        self.pipes.producer_settled(runner.name)

    def exit_code(self, names: Sequence[str] | None = None) -> int:
        """0 if every task in ``names`` (default: the started ones) ended fine, else 1.

        A task counts as not fine when it is failed or blocked, or when its last run ended
        unsuccessfully and nothing restarted it.
        """
        state = self.store.state
        for name in names if names is not None else self.selected:
            task = state.tasks.get(name)
            if task is None:
                continue
            if task.status in FAILED_STATUSES:
                return EXIT_FAILED
            if task.status is Status.EXITED and task.last_exit is not None:
                if not task.last_exit.success:
                    return EXIT_FAILED
        return EXIT_OK

    async def shutdown(self, force: bool = False, reason: str = "request") -> int:
        """Stop every task in reverse dependency order and close the logs.

        Calling it again while a graceful shutdown runs with ``force=True`` escalates to
        SIGKILL of every remaining process group.

        Args:
            force: Kill at once instead of each task's graceful stop.
            reason: ``request``, ``signal`` or ``finished`` (recorded).

        Returns:
            The engine's exit code (see :meth:`exit_code`; 130/143 after SIGINT/SIGTERM).
        """
        if force:
            self._force = True
            for runner in self._runners.values():
                runner.kill()
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.create_task(self._shutdown(force, reason))
        return await asyncio.shield(self._shutdown_task)

    async def _shutdown(self, force: bool, reason: str) -> int:
        self._shutting_down = True
        self.store.dispatch(T.ENGINE_STOPPING, reason=reason, force=force)
        await self.triggers.close()
        await stop_in_reverse_order(
            self.graph, self._runners, list(self.tasks), StopReason.SHUTDOWN, lambda: self._force
        )
        await self.pipes.close()
        code = _SIGNAL_EXITS.get(self.interrupted or 0, self.exit_code())
        self.store.dispatch(T.ENGINE_STOPPED, exit_code=code)
        await self.close()
        return code

    async def close(self) -> None:
        """Release the event log, output files and the executor (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._unsubscribe()
        self.output.close()
        eventlog = self.store.eventlog
        if eventlog is not None:
            eventlog.close()
        await self._wiring.aclose()

    def install_signal_handlers(self) -> Callable[[], None]:
        """First SIGINT/SIGTERM/SIGHUP stops gracefully, a second one kills at once.

        A repeated SIGHUP never kills: a closed terminal window can deliver two (the
        kernel's and the shell's), and a hang-up is no one insisting.

        Install them before anything awaits (``devster up`` does so before it serves the
        API): a signal in any phase, even before ``engine.started``, then stops the engine.
        A second call while they are installed changes nothing.

        Returns:
            A function that removes the handlers (a no-op for the nested call).
        """
        if self._signals_installed:
            return lambda: None
        self._signals_installed = True
        loop = asyncio.get_running_loop()
        signals = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP)

        def handle(signum: int) -> None:
            if self.interrupted is None:
                self.interrupted = signum
                self.spawn(self.shutdown(False, "signal"), "shutdown on a signal")
            elif signum != _signal.SIGHUP:
                self.spawn(self.shutdown(True, "signal"), "forced shutdown on a signal")

        for signum in signals:
            loop.add_signal_handler(signum, handle, signum)

        def remove() -> None:
            self._signals_installed = False
            for signum in signals:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(signum)

        return remove

    @property
    def stopping(self) -> bool:
        """Whether shutdown has begun."""
        return self._shutting_down

    def spawn(self, coro: Coroutine[Any, Any, object], name: str = "") -> asyncio.Task[None]:
        """Run ``coro`` in the background, guarded (see
        :func:`~devster_tui.engine.background.spawn_guarded`): an exception is logged here.

        Args:
            coro: The job.
            name: What it is, for the log line if it raises.

        Returns:
            The task (awaiting it never raises but a cancellation).
        """
        return spawn_guarded(coro, name or "job of the engine", logger=log)

    # ------------------------------------------------------------------ output

    def on_output_activity(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Call ``fn()`` after every output chunk is stored (keep it cheap: set a flag).

        Returns:
            A function that unsubscribes ``fn``.
        """
        return self._output_listeners.add(fn)

    # ------------------------------------------------------------------ rules

    def _on_event(self, event: Event, state: EngineState) -> None:
        self._waiter.notify()
        if self._shutting_down or event.task is None or event.task not in self._runners:
            return
        self.triggers.on_event(event)
        self.dependencies.on_event(event)

    # ------------------------------------------------------------------ commands

    async def execute(self, command: Command) -> CommandResult:
        """Carry out a client's command (see :class:`~devster_tui.state.commands.Command`
        and the table of :mod:`~devster_tui.engine.commands`)."""
        return await commands.execute(self, command)

    def start_with_dependencies(self, names: Sequence[str], reason: str = "start") -> list[str]:
        """Start ``names`` plus dependencies that never ran or were stopped.

        Returns:
            The tasks started.
        """
        started = start_closure(self.graph, self._runners, self.store.state, names, reason)
        self.selected.extend(n for n in started if n not in self.selected)
        return started
