"""The engine: supervises every task of a loaded project and answers clients' commands.

Why this shape: the :class:`Engine` owns the store (state + event log), the output store
and one :class:`~devster_tui.engine.runner.TaskRunner` per task, and it is the only
:class:`~devster_tui.state.commands.Controller` clients talk to.  Runners start in
topological order by waiting for their own dependencies (so independent tasks start in
parallel), the engine applies the per-dependency rules when a dependency restarts or
fails, and shutdown stops tasks level by level in reverse order.  Nothing here formats text
for people: everything becomes an event, and clients (TUI, headless printer) render them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import signal as _signal
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devster_tui import __version__
from devster_tui.config.graph import TaskGraph, in_profiles
from devster_tui.config.schema import Task
from devster_tui.engine.dependencies import DependencyRules
from devster_tui.engine.gates import Gates
from devster_tui.engine.masking import task_config
from devster_tui.engine.pipes import PipeManager, wants_pipe
from devster_tui.engine.policy import (
    EngineMode,
    StopReason,
    engine_done,
    on_stop_command,
    resets_restart_budget,
)
from devster_tui.engine.runner import RunnerContext, StateWaiter, TaskRunner
from devster_tui.engine.triggers import TriggerHub
from devster_tui.errors import ExitCode, unknown_names
from devster_tui.executors.base import Executor
from devster_tui.state.clock import Clock, SystemClock
from devster_tui.state.commands import OBSERVE_GUARDED, Command, CommandResult
from devster_tui.state.eventlog import EventLog
from devster_tui.state.events import Event, T
from devster_tui.state.model import FAILED_STATUSES, EngineState, Status
from devster_tui.state.output import OutputStore
from devster_tui.state.payloads import TaskDefined
from devster_tui.state.store import Store

if TYPE_CHECKING:
    from devster_tui.config.loader import LoadedProject
    from devster_tui.engine.fanout import LayerRouter
    from devster_tui.engine.procs import ProcRegistry
    from devster_tui.executors.contain import KillNotice

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
        self._own_executor = executor is None
        self._executor_arg = executor
        self._executor: Executor | None = executor
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
        self._output_listeners: list[Callable[[], None]] = []
        self._shutdown_task: asyncio.Task[int] | None = None
        self._shutting_down = False
        self._force = False
        self._closed = False
        self._signals_installed = False
        self._background: set[asyncio.Future[object]] = set()
        self._registry: ProcRegistry | None = None
        self._router: LayerRouter | None = None
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

    def _make_executor(self) -> Executor:
        if self._executor is None:
            from devster_tui.engine.procs import ProcRegistry
            from devster_tui.executors.local import LocalExecutor

            self._registry = ProcRegistry(self.state_dir)
            self._executor = LocalExecutor(listener=self._registry, on_kill=self._process_killed)
        return self._executor

    def _process_killed(self, notice: KillNotice) -> None:
        """The local executor SIGKILLed a process or ended an escapee: a ``task.killed``."""
        name, _, part = notice.task.partition(":")
        self.store.dispatch(
            T.TASK_KILLED,
            name if name in self.tasks else None,
            pid=notice.pid,
            name=notice.name,
            signal=_signal.Signals(notice.signal).name,
            why=notice.why,
            process=part or "task",
        )

    def _layered(self, local: Executor) -> Executor:
        """Route tasks that run through layers (docker, ssh) to their own executors."""
        from devster_tui.engine.fanout import build_router
        from devster_tui.engine.secrets import with_layer_secrets

        project = self.loaded.project.model_copy(update={"tasks": self.tasks})
        project = with_layer_secrets(project, self.secrets)  # credentials for executors only
        self._router = build_router(
            local,
            project,
            self.tasks,
            self.host_of,
            self.loaded.variables,
            self.loaded.root,
            self._layer_notice,
        )
        return self._router if self._router.routes else local

    def _layer_notice(self, task: str, state: str, detail: str) -> None:
        if state == "warning":
            self.store.dispatch(T.WARNING, task, message=f"{task}: {detail}")
        elif state == "waiting":
            self.store.dispatch(T.TASK_WAITING, task, reason=detail, on=[])
        else:
            self.store.dispatch(T.TASK_LINK, task, state=state, detail=detail)

    def _task_env(self, task: Task) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.loaded.variables)
        if task.environment is not None:
            environment = self.loaded.project.environments.get(task.environment)
            if environment is not None:
                env.update(environment.env)
        if task.env_file is not None:
            from devster_tui.config.envfile import read_env_file

            files = [task.env_file] if isinstance(task.env_file, str) else task.env_file
            for name in files:
                env.update(read_env_file(self.loaded.root / name))
        env.update(task.env)
        from devster_tui.engine.secrets import substitute_env

        return substitute_env(env, self.secrets)

    def _build_runners(self) -> None:
        from devster_tui.engine.ports import check_ports

        ctx = RunnerContext(
            store=self.store,
            output=self.output,
            executor=self._layered(self._make_executor()),
            clock=self.clock,
            root=self.loaded.root,
            waiter=self._waiter,
            check_ports=check_ports,
            rng=self._rng,
            on_output_activity=self._output_activity,
            on_settled=self._on_settled,
            on_process=lambda runner, proc: self.pipes.attach(runner.name, proc),
            secret_values=self.secrets.reveal() if self.secrets is not None else {},
        )
        known = frozenset(self.tasks)
        for name, task in self.tasks.items():
            runner = TaskRunner(name, task, ctx, self._task_env(task), known)
            runner.stdin_pipe = wants_pipe(task)
            if self.gates.gated(name):
                runner.hold = self.gates.hold
            self._runners[name] = runner

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
        from devster_tui.engine.procs import cleanup_orphans
        from devster_tui.engine.secrets import prepare

        # A shutdown (a signal, devster down) may arrive during any await before the
        # tasks start: from then on start nothing, the shutdown has already stopped all.
        if self._shutting_down:
            return
        await prepare(self)
        if self._shutting_down:
            return
        orphans = await asyncio.to_thread(cleanup_orphans, self.state_dir)
        if self._shutting_down:
            return
        for orphan in orphans:
            from devster_tui.executors.contain import KillNotice

            self.store.dispatch(T.ORPHAN_KILLED, orphan.task, pid=orphan.pid, pgid=orphan.pgid)
            for pid in orphan.killed:
                self._process_killed(KillNotice(orphan.task, pid, "", _signal.SIGKILL, "orphan"))
        project = self.loaded.project
        self.store.dispatch(
            T.ENGINE_STARTED,
            project=project.name or self.loaded.root.name,
            config_file=str(self.loaded.file),
            pid=os.getpid(),
            tasks=list(self.tasks),
            version=__version__,
        )
        for name, task in self.tasks.items():
            data = _defined_data(task, self.tasks)
            data["host"] = self.host_of.get(name)
            self.store.dispatch(T.TASK_DEFINED, name, **data)
        self._build_runners()
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
    def finished(self) -> bool:
        """Whether no task lifecycle is active (nothing runs, waits or backs off)."""
        return not any(r.active for r in self._runners.values())

    async def wait_finished(self) -> None:
        """Wait until no task lifecycle is active."""
        await self.wait_tasks(list(self._runners))

    def can_be_started(self) -> bool:
        """Whether an armed observer can still start a task on its own.

        File and interval observers and manual gates can, while a task they trigger is
        not stopped by the user (and, when the user named tasks, is one of those); a
        log observer can while the task it reads is active.  Task-finished observers
        need another task to run, so they keep nothing up by themselves.
        """
        state = self.store.state.tasks
        for observer, targets in self.triggers.targets.items():
            spec = self.triggers.observers[observer]
            if spec.kind == "task":
                continue
            if spec.log is not None:
                source = self._runners.get(spec.log.task)
                if source is None or not source.active:
                    continue
            for name in targets:
                if self.explicit_selection and name not in self.selected:
                    continue
                task = state.get(name)
                if task is not None and task.status is not Status.STOPPED:
                    return True
        return False

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

    def _on_settled(self, runner: TaskRunner) -> None:
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
        try:
            levels = self.graph.levels()
        except ValueError:
            levels = [list(self.tasks)]
        for level in reversed(levels):
            runners = [self._runners[n] for n in level if n in self._runners]
            await asyncio.gather(
                *(r.stop(StopReason.SHUTDOWN, force=self._force) for r in runners if r.active)
            )
        await self.pipes.close()
        code = self.exit_code()
        if self.interrupted == _signal.SIGINT:
            code = EXIT_INTERRUPTED
        elif self.interrupted == _signal.SIGTERM:
            code = EXIT_TERMINATED
        elif self.interrupted == _signal.SIGHUP:
            code = EXIT_HANGUP
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
        if self._router is not None:
            await self._router.aclose()
        if self._own_executor and self._executor is not None:
            await self._executor.aclose()
        if self._registry is not None:
            self._registry.close()

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
                self._spawn(self.shutdown(False, "signal"))
            elif signum != _signal.SIGHUP:
                self._spawn(self.shutdown(True, "signal"))

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

    def spawn(self, coro: Coroutine[Any, Any, object], name: str = "") -> None:
        """Run ``coro`` in the background, keeping a reference until it ends.

        Args:
            coro: The job.
            name: What it is, for the log line if it raises.
        """
        self._spawn(coro, name)

    def _spawn(self, coro: Coroutine[Any, Any, object], name: str = "") -> None:
        future: asyncio.Future[object] = asyncio.ensure_future(coro)
        self._background.add(future)
        future.add_done_callback(lambda done: self._background_done(done, name))

    def _background_done(self, future: asyncio.Future[object], name: str) -> None:
        self._background.discard(future)
        if not future.cancelled() and (exc := future.exception()) is not None:
            log.error("background job of the engine failed: %s", name or "?", exc_info=exc)

    # ------------------------------------------------------------------ output

    def on_output_activity(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Call ``fn()`` after every output chunk is stored (keep it cheap: set a flag).

        Returns:
            A function that unsubscribes ``fn``.
        """
        self._output_listeners.append(fn)

        def remove() -> None:
            if fn in self._output_listeners:
                self._output_listeners.remove(fn)

        return remove

    def _output_activity(self) -> None:
        for fn in self._output_listeners:
            fn()

    # ------------------------------------------------------------------ rules

    def _on_event(self, event: Event, state: EngineState) -> None:
        self._waiter.notify()
        if self._shutting_down or event.task is None or event.task not in self._runners:
            return
        self.triggers.on_event(event)
        self.dependencies.on_event(event)

    # ------------------------------------------------------------------ commands

    async def execute(self, command: Command) -> CommandResult:
        """Carry out a client's command (see :class:`~devster_tui.state.commands.Command`)."""
        action = command.action
        if action == "shutdown":
            self.store.dispatch(
                T.COMMAND, action=action, by=command.by, confirmed=command.confirmed
            )
            await self.shutdown(command.force, "request")
            return CommandResult(True, "stopped")
        if action in ("trigger", "approve"):
            command = self._observer_targets(command)
        unknown = [n for n in command.tasks if n not in self._runners]
        if unknown:
            message = unknown_names("unknown task", unknown, self._runners, "tasks")
            return CommandResult(False, message, unknown=tuple(unknown))
        if not command.tasks:
            return CommandResult(False, f"{action}: name at least one task")
        if action in OBSERVE_GUARDED and not command.confirmed:
            observed = [n for n in command.tasks if self.tasks[n].mode == "observe"]
            if observed:
                return CommandResult(
                    False,
                    f"{', '.join(observed)} is read-only (mode: observe); confirm to {action}",
                    needs_confirmation=True,
                )
        if self._shutting_down:
            return CommandResult(False, "the engine is stopping")
        for name in command.tasks:
            self.store.dispatch(
                T.COMMAND, name, action=action, by=command.by, confirmed=command.confirmed
            )
            if resets_restart_budget(action):
                self._runners[name].reset_restart_budget()
        if action == "start":
            started = self._start_with_dependencies(command.tasks)
            return CommandResult(True, f"started {', '.join(started)}" if started else "running")
        if action == "stop":
            return await self._stop(command)
        if action == "approve":
            return await self._approve(command)
        if action == "set_watch":
            for name in command.tasks:
                current = self.store.state.tasks[name].watching
                enabled = (not current) if command.enabled is None else command.enabled
                self.store.dispatch(T.TASK_WATCH, name, enabled=enabled)
            return CommandResult(True, "file watching updated")
        if action == "send_stdin":
            for name in command.tasks:
                refusal = await self.pipes.send_console(name, command.data)
                if refusal is not None:
                    return CommandResult(False, refusal)
            return CommandResult(True, f"sent {len(command.data)} bytes")
        if action in ("restart", "trigger"):
            reason = "restart" if action == "restart" else "trigger"
            if action == "trigger":
                for name in command.tasks:
                    self.store.dispatch(T.TASK_TRIGGERED, name, trigger="user", detail="")
                    # Triggering a gated task by name approves its gate once.
                    if self.gates.gated(name) and self.gates.approve(name):
                        continue
            for name in command.tasks:
                if action == "trigger" and self.gates.gated(name) and self._runners[name].active:
                    if not self._runners[name].live:
                        continue  # released at the gate, or the approval waits for the deps
                if not self._runners[name].active:
                    self._start_with_dependencies([name], reason)
                else:
                    await self._runners[name].restart(reason)
            return CommandResult(True, f"{action}ed {', '.join(command.tasks)}")
        if action == "set_autorestart":
            for name in command.tasks:
                current = self.store.state.tasks[name].autorestart
                enabled = (not current) if command.enabled is None else command.enabled
                self.store.dispatch(T.TASK_AUTORESTART, name, enabled=enabled)
            return CommandResult(True, "auto-restart updated")
        return CommandResult(False, f"{action}: not supported by this engine")

    async def _stop(self, command: Command) -> CommandResult:
        """A user's stop: running tasks stop, idle ones get their triggers switched off."""
        stopping, disarmed = [], []
        for name in command.tasks:
            if on_stop_command(self._runners[name].active) == "stop":
                stopping.append(name)
            else:
                disarmed.append(name)
                self.store.dispatch(T.TASK_STOPPED, name, reason="user", was_running=False)
        await asyncio.gather(
            *(self._runners[n].stop(StopReason.USER, force=command.force) for n in stopping)
        )
        said = [f"stopped {', '.join(stopping)}"] if stopping else []
        if disarmed:
            verb = "was" if len(disarmed) == 1 else "were"
            said.append(f"{', '.join(disarmed)} {verb} not running; triggers off")
        return CommandResult(True, "; ".join(said))

    def _observer_targets(self, command: Command) -> Command:
        """Replace observer names (``devster trigger go-integration``) by their tasks."""
        names: list[str] = []
        for name in command.tasks:
            if name not in self._runners and name in self.triggers.targets:
                names.extend(self.triggers.targets[name])
            else:
                names.append(name)
        return dataclasses.replace(command, tasks=tuple(dict.fromkeys(names)))

    async def _approve(self, command: Command) -> CommandResult:
        """Open the manual gates of ``command.tasks`` (once, or for the session)."""
        ungated = [n for n in command.tasks if not self.gates.gated(n)]
        if ungated:
            return CommandResult(False, f"{', '.join(ungated)}: no manual gate to approve")
        for name in command.tasks:
            released = self.gates.approve(name, command.always)
            detail = "approved for the session" if command.always else "approved"
            self.store.dispatch(
                T.TASK_TRIGGERED, name, trigger=self.gates.observer(name) or "user", detail=detail
            )
            if released:
                continue
            runner = self._runners[name]
            if runner.live:
                if self.tasks[name].kind == "job":
                    runner.follow_up = "trigger"
                else:
                    await runner.restart("trigger")
            elif not runner.active:
                self._start_with_dependencies([name], "trigger")
        return CommandResult(True, f"approved {', '.join(command.tasks)}")

    def start_with_dependencies(self, names: Sequence[str], reason: str = "start") -> list[str]:
        """Start ``names`` plus dependencies that never ran or were stopped.

        Returns:
            The tasks started.
        """
        return self._start_with_dependencies(names, reason)

    def _start_with_dependencies(self, names: Sequence[str], reason: str = "start") -> list[str]:
        """Start ``names`` plus dependencies that never ran or were stopped."""
        state = self.store.state
        started: list[str] = []
        for name in self.graph.closure(names):
            runner = self._runners.get(name)
            if runner is None or runner.active:
                continue
            status = state.tasks[name].status if name in state.tasks else Status.DEFINED
            if name in names or status in (Status.DEFINED, Status.STOPPED):
                runner.start(reason if name in names else "start")
                started.append(name)
                if name not in self.selected:
                    self.selected.append(name)
        return started


def _defined_data(task: Task, tasks: Mapping[str, Task]) -> TaskDefined:
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
