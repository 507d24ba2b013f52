"""How a task's process is stopped: its stop signal or stop command, then SIGKILL.

Why apart from the runner: the stop runs beside the task's lifecycle (the lifecycle keeps
waiting for the process to exit, and that exit is what it acts on), so it is a task of its
own with its own failure handling.  It announces ``task.stopping`` (with how: the signal,
``command`` or ``SIGKILL``), and whatever goes wrong while stopping ends in a SIGKILL of the
group, never in a process left running.  Why the process is stopped is the runner's
business (its stop reason); this module only carries the stop out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal as _signal
from collections.abc import Callable, Mapping

from devster_tui.config.schema import Task
from devster_tui.config.shell import command_argv
from devster_tui.engine.background import spawn_guarded
from devster_tui.engine.context import RunnerContext
from devster_tui.engine.interp import substitute_ports
from devster_tui.engine.policy import StopReason
from devster_tui.executors.base import Process, ProcessSpec, SpawnError
from devster_tui.state.events import T
from devster_tui.state.payloads import TaskStopping

log = logging.getLogger(__name__)


class ProcessStop:
    """The stop of one task's processes (at most one stop in progress at a time)."""

    def __init__(
        self,
        name: str,
        task: Task,
        ctx: RunnerContext,
        env: Mapping[str, str],
        *,
        run: Callable[[], int],
        exited: Callable[[], asyncio.Event],
    ) -> None:
        """Prepare the stops of task ``name``.

        Args:
            name: The task.
            task: Its configuration (``stop``, ``ports``, ``cwd``).
            ctx: The runners' shared context.
            env: The task's environment (ports not yet substituted), for a stop command.
            run: The task's current run number (a stop command's output belongs to it).
            exited: The event set once the current run's process has exited.
        """
        self._name = name
        self._task = task
        self._ctx = ctx
        self._env = env
        self._run = run
        self._exited = exited
        self._stopping: asyncio.Task[None] | None = None

    def forget(self) -> None:
        """A new lifecycle begins: a stop of an earlier one no longer counts."""
        self._stopping = None

    def begin(self, proc: Process, reason: StopReason, *, force: bool, restart_reason: str) -> None:
        """Stop ``proc`` in the background, announcing ``task.stopping``.

        While a stop is in progress a second one only escalates (``force``: SIGKILL now).

        Args:
            proc: The live process.
            reason: Why (recorded); a restart's event says ``restarting``.
            force: SIGKILL the group at once instead of the graceful stop.
            restart_reason: For a restart: what asked for it (shown with ``restarting``).
        """
        if self._stopping is not None and not self._stopping.done():
            if force:
                proc.send_signal(_signal.SIGKILL)
            return
        stop = self._task.stop
        how = "SIGKILL" if force else ("command" if stop.command is not None else stop.signal)
        payload: TaskStopping = {"reason": reason.value, "signal": how}
        if reason is StopReason.RESTART:
            why = restart_reason
            payload["detail"] = "restarting" if why == "restart" else f"restarting: {why}"
        self._ctx.store.dispatch(T.TASK_STOPPING, self._name, **payload)
        self._stopping = spawn_guarded(self._stop(proc, force), f"stop of {self._name}", logger=log)

    async def _stop(self, proc: Process, force: bool) -> None:
        try:
            if force:
                await proc.stop(_signal.SIGKILL, 0.0)
                return
            stop = self._task.stop
            if stop.command is None:
                await proc.stop(int(_signal.Signals[stop.signal]), stop.timeout)
                return
            await self._run_stop_command(stop.command)
            try:
                await asyncio.wait_for(self._exited().wait(), stop.timeout)
            except TimeoutError:
                await proc.stop(_signal.SIGKILL, 0.0)
        except Exception:
            log.exception("stopping task %s failed; killing its group", self._name)
            with contextlib.suppress(Exception):
                proc.send_signal(_signal.SIGKILL)

    async def _run_stop_command(self, command: str | list[str]) -> None:
        task, ctx, name = self._task, self._ctx, self._name
        argv = command_argv(command)
        ports = dict(task.ports)
        argv = [substitute_ports(a, ports) for a in argv]
        spec = ProcessSpec(
            task=f"{name}:stop",
            argv=argv,
            env={k: substitute_ports(v, ports) for k, v in self._env.items()},
            cwd=str((ctx.root / task.cwd) if task.cwd else ctx.root),
            secret_values=ctx.secret_values,
        )
        output, run = ctx.output, self._run()
        try:
            proc = await ctx.executor.spawn(
                spec, lambda s, c: output.append(name, s, c, run), lambda _s: None
            )
        except SpawnError as exc:
            ctx.store.dispatch(T.WARNING, name, message=f"{name}: stop command failed: {exc}")
            return
        try:
            await asyncio.wait_for(proc.wait(), task.stop.timeout)
        except TimeoutError:
            await proc.stop(_signal.SIGKILL, 0.0)
