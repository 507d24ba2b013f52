"""One task's lifecycle: wait for dependencies, ensure, check ports, spawn, watch, exit, decide.

Why one guarded coroutine per task: every state change of a task happens in one place, in
order, so "a task never has two live instances" and "an explicitly stopped task is never
restarted" are properties of a single loop rather than of many callbacks.  The coroutine is
guarded: an exception becomes a ``task.failed`` event (and the process is killed), never a
silent death.  The runner formats nothing for people; it dispatches events, and it decides
restarts with the pure functions of :mod:`devster_tui.engine.policy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal as _signal
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

from devster_tui.config.schema import Task
from devster_tui.engine.background import spawn_guarded
from devster_tui.engine.context import RunnerContext
from devster_tui.engine.dependencies import wait_for_dependencies
from devster_tui.engine.policy import Next, PolicyState, StopReason, after_exit, exit_success
from devster_tui.engine.prepare import PrepareError, output_sinks, prepare_spec, summary
from devster_tui.engine.stopping import ProcessStop
from devster_tui.engine.watchers import Alarms, RunWatchers
from devster_tui.executors.base import ExitStatus, Process, SpawnError
from devster_tui.state.events import T
from devster_tui.state.payloads import TaskExited, TaskStarting

log = logging.getLogger(__name__)

LAST_LINES = 20
"""Output lines carried by ``task.exited`` and ``task.failed`` events."""

Phase = Literal["idle", "waiting", "preparing", "spawning", "live", "backoff"]


class TaskRunner:
    """Supervises one task: at most one lifecycle coroutine and one live process at a time."""

    def __init__(
        self,
        name: str,
        task: Task,
        ctx: RunnerContext,
        env: Mapping[str, str],
        known_tasks: frozenset[str],
    ) -> None:
        """Prepare a runner; nothing starts until :meth:`start`.

        Args:
            name: Task name.
            task: Its configuration.
            ctx: Shared engine context.
            env: The complete process environment (ports not yet substituted).
            known_tasks: Names of every defined task (dependencies outside are ignored).
        """
        self.name = name
        """Task name."""
        self.task = task
        """Task configuration."""
        self._ctx = ctx
        self._env = dict(env)
        self._deps = {d: spec for d, spec in task.dependencies.items() if d in known_tasks}
        self._main: asyncio.Task[None] | None = None
        self._proc: Process | None = None
        self._phase: Phase = "idle"
        self._stop_reason: StopReason | None = None
        self._restart_reason = "restart"
        self._budget_reset = False
        self._exited = asyncio.Event()
        self._policy = PolicyState()
        self._run = 0
        self._alarms = Alarms(name, task, ctx)
        self._watchers = RunWatchers(name, task, ctx, self._alarms, self._stop_for)
        self._stopping = ProcessStop(
            name, task, ctx, self._env, run=lambda: self._run, exited=lambda: self._exited
        )
        self.hold: Callable[[TaskRunner, str], Awaitable[None]] | None = None
        """Awaited after the dependencies are met and before each run (a manual gate)."""
        self.follow_up: str | None = None
        """A start reason queued while a run was live: one more run follows it."""
        self.stdin_pipe = False
        """Spawn with a stdin pipe (the task reads another task, a file or the console)."""
        self.ignore_dependencies = False
        """Start without waiting for the dependencies (``devster up --no-deps``)."""
        self.seen_runs: dict[str, int] = {}
        """Each dependency's run number when this task's current run started: a
        dependency's restart counts only for a newer run (see ``on_dependency_event``)."""

    # ------------------------------------------------------------------ public

    @property
    def active(self) -> bool:
        """Whether the lifecycle coroutine is running (waiting, live or in backoff)."""
        return self._main is not None and not self._main.done()

    @property
    def phase(self) -> Phase:
        """Where the lifecycle is."""
        return self._phase if self.active else "idle"

    @property
    def live(self) -> bool:
        """Whether a process exists (or is being spawned)."""
        return self.active and self._phase in ("spawning", "live")

    def start(self, reason: str = "start") -> bool:
        """Start the lifecycle unless it is already active.

        Args:
            reason: Recorded in ``task.starting`` (``start``, ``restart``, ``trigger``...).

        Returns:
            Whether a new lifecycle started.
        """
        if self.active:
            return False
        self._stop_reason = None
        self._stopping.forget()
        self.follow_up = None
        self._main = spawn_guarded(self._guarded(reason), self.name, logger=log)
        return True

    def reset_restart_budget(self) -> None:
        """Clear the restart counter and window (a user's start or restart); the next
        ``task.starting`` says so with ``reset: true``."""
        self._policy = PolicyState()
        self._budget_reset = True

    def _final_stop(self) -> bool:
        return self._stop_reason is not None and self._stop_reason.final

    async def stop(self, reason: StopReason = StopReason.USER, force: bool = False) -> None:
        """Stop the task and wait until its lifecycle has ended; it is not restarted.

        A stop during backoff or while waiting for dependencies cancels the (re)spawn.

        Args:
            reason: A final stop reason: user, shutdown or dependency (recorded in events).
            force: SIGKILL the process group at once instead of the graceful stop.
        """
        main = self._main
        if main is None or main.done():
            return
        self._stop_reason = reason
        if self._phase == "live" or (self._phase == "spawning" and self._proc is not None):
            self._begin_stop(reason, force)
            await self._join(main)
            return
        # Still spawning means the executor itself waits (a Docker daemon or an ssh host
        # that is down): cancelling the spawn is the stop.
        main.cancel()
        await self._join(main)
        self._phase = "idle"
        self._ctx.store.dispatch(T.TASK_STOPPED, self.name, reason=reason.value)

    async def restart(self, reason: str = "restart") -> None:
        """Restart now: stop a live process gracefully and start again (no backoff).

        A task in backoff or waiting starts over; an inactive task simply starts.

        Args:
            reason: Recorded as the ``task.starting`` reason of the new run.
        """
        main = self._main
        if main is not None and not main.done():
            if self._phase in ("spawning", "live"):
                if self._final_stop():
                    return
                self._stop_reason = StopReason.RESTART
                self._restart_reason = reason
                self._begin_stop(StopReason.RESTART, False)
                return
            main.cancel()
            await self._join(main)
        self.start(reason)

    def kill(self) -> None:
        """Escalate a stop in progress to SIGKILL of the whole group (second Ctrl-C)."""
        if self._phase in ("spawning", "live"):
            self._stop_reason = self._stop_reason or StopReason.SHUTDOWN
            self._begin_stop(self._stop_reason, True)

    async def _join(self, main: asyncio.Task[None]) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(main)
        if main.cancelled():
            return
        with contextlib.suppress(asyncio.CancelledError):
            await main

    # ------------------------------------------------------------------ lifecycle

    async def _guarded(self, reason: str) -> None:
        try:
            next_reason: str | None = reason
            while next_reason is not None:
                if not await self._wait_dependencies():
                    return
                if self.hold is not None:
                    if self._final_stop():
                        return  # a stop whose cancellation a finished wait swallowed
                    self._phase = "waiting"
                    await self.hold(self, next_reason)
                next_reason = await self._run_once(next_reason)
                if next_reason is None and self.follow_up is not None:
                    if not self._final_stop():
                        next_reason, self._stop_reason = self.follow_up, None
                    self.follow_up = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("runner of task %s crashed", self.name)
            proc = self._proc
            if proc is not None:
                with contextlib.suppress(Exception):
                    await proc.stop(_signal.SIGKILL, 0.0)
            self._ctx.store.dispatch(
                T.TASK_FAILED,
                self.name,
                reason=f"internal error in the supervisor: {exc!r}",
                last_exit=None,
                last_lines=self._last_lines(),
            )
        finally:
            self._phase = "idle"
            self._proc = None
            self._watchers.end()
            if self._stop_reason is not None:
                self._alarms.clear_crash_loop()
            self._ctx.on_settled(self)

    async def _wait_dependencies(self) -> bool:
        """Wait until every dependency meets its condition; False (and blocked) if it cannot."""
        if not self._deps or self.ignore_dependencies:
            return True
        self._phase = "waiting"
        return await wait_for_dependencies(self.name, self._deps, self._ctx)

    async def _run_once(self, reason: str) -> str | None:
        """One run: prepare, spawn, wait, decide.  Returns the next start reason, or None."""
        ctx, store, task = self._ctx, self._ctx.store, self.task
        current = store.state.tasks.get(self.name)
        self._run = (current.run if current is not None else self._run) + 1
        run = self._run
        self._phase = "preparing"
        self._exited = asyncio.Event()
        starting: TaskStarting = {"run": run, "reason": reason}
        if self._budget_reset:
            starting["reset"] = True
        self._budget_reset = False
        tasks = store.state.tasks
        self.seen_runs = {d: t.run if (t := tasks.get(d)) is not None else 0 for d in self._deps}
        store.dispatch(T.TASK_STARTING, self.name, **starting)
        ctx.output.mark(self.name, f"── run {run} ({reason}) ──", run)
        self._watchers.watch_stuck(run)
        try:
            spec = await prepare_spec(self.name, task, ctx, self._env, stdin_pipe=self.stdin_pipe)
        except PrepareError as exc:
            self._fail(str(exc))
            return None
        on_output, on_eof = output_sinks(ctx, self.name, run)
        self._phase = "spawning"
        try:
            proc = await ctx.executor.spawn(spec, on_output, on_eof)
        except SpawnError as exc:
            store.dispatch(T.TASK_SPAWN_FAILED, self.name, error=str(exc), errno=exc.errno)
            self._fail_quiet()
            return None
        self._proc = proc
        self._phase = "live"
        started = ctx.clock.monotonic()
        store.dispatch(
            T.TASK_SPAWNED,
            self.name,
            pid=proc.pid,
            pgid=proc.pgid,
            run=run,
            argv_summary=summary(spec.argv),
        )
        if self._stop_reason is not None:
            # A stop arrived while spawning: carry it out now.
            self._begin_stop(self._stop_reason, False)
        self._watchers.start(run, spec.env, spec.cwd, dict(task.ports))
        ctx.on_process(self, proc)

        status = await proc.wait()
        self._exited.set()
        self._proc = None
        ctx.on_process(self, None)
        self._phase = "preparing"
        self._watchers.end()
        next_reason, delay = self._after_exit(run, status, ctx.clock.monotonic() - started)
        if delay is not None:
            await asyncio.sleep(delay)
        return next_reason

    def _after_exit(
        self, run: int, status: ExitStatus, ran_for: float
    ) -> tuple[str | None, float | None]:
        """Decide what follows the exit (:func:`~devster_tui.engine.policy.after_exit`) and
        publish it, the decision inside the exit event, in one synchronous step.

        Returns:
            The reason of the next start (None: no next start) and the backoff delay
            before it (None: start at once).
        """
        store, task = self._ctx.store, self.task
        stop = self._stop_reason
        success = exit_success(status.code, status.signal, task.success_exit_codes, stop)
        state = store.state.tasks.get(self.name)
        now = self._ctx.clock.monotonic()
        outcome, self._policy = after_exit(
            kind=task.kind,
            spec=task.restart,
            state=self._policy,
            stop=stop,
            success=success,
            ran_for=ran_for,
            now=now,
            autorestart=state is None or state.autorestart,
            timeout=task.timeout,
            rng=self._ctx.rng,
        )
        last_lines = self._last_lines(run)
        exited: TaskExited = {
            "run": run,
            "code": status.code,
            "signal": status.signal_name,
            "success": success,
            "duration": round(ran_for, 6),
            "stopped": stop is not None,
            "next": outcome.next.value,
            "last_lines": last_lines,
        }
        if status.reason:
            exited["why"] = status.reason
        store.dispatch(T.TASK_EXITED, self.name, **exited)
        last_exit = f"signal {status.signal_name}" if status.signal else f"exit {status.code}"
        if ran_for >= task.restart.stable_after:
            self._alarms.clear_crash_loop()
        match outcome.next:
            case Next.START:
                self._stop_reason = None
                return self._restart_reason, None
            case Next.STOPPED:
                store.dispatch(T.TASK_STOPPED, self.name, reason=outcome.reason)
                return None, None
            case Next.FAILED:
                self._stop_reason = None
                reason = outcome.reason or last_exit
                self._fail(reason, last_exit=last_exit, last_lines=last_lines)
                return None, None
            case Next.SUCCEEDED:
                self._stop_reason = None
                store.dispatch(T.TASK_SUCCEEDED, self.name, run=run, duration=round(ran_for, 6))
                return None, None
            case Next.EXITED:
                self._stop_reason = None
                return None, None
        self._stop_reason = None
        self._alarms.check_crash_loop(self._policy.restart_times, now)
        self._phase = "backoff"
        store.dispatch(
            T.TASK_BACKOFF, self.name, delay=round(outcome.delay, 6), attempt=outcome.attempt
        )
        return "restart", outcome.delay

    # ------------------------------------------------------------------ helpers

    def _fail(
        self, reason: str, *, last_exit: str | None = None, last_lines: list[str] | None = None
    ) -> None:
        self._ctx.store.dispatch(
            T.TASK_FAILED,
            self.name,
            reason=reason,
            last_exit=last_exit,
            last_lines=last_lines if last_lines is not None else self._last_lines(),
        )
        self._fail_quiet()

    def _fail_quiet(self) -> None:
        self._phase = "preparing"

    def _last_lines(self, run: int | None = None) -> list[str]:
        """The task's last output lines, of run ``run`` only when given."""
        lines = self._ctx.output.tail(self.name, "both", LAST_LINES)
        return [
            line.data.decode("utf-8", "replace")
            for line in lines
            if line.stream != "marker" and (run is None or line.run == run)
        ]

    def _begin_stop(self, reason: StopReason, force: bool) -> None:
        proc = self._proc
        if proc is None:
            return  # still spawning: the lifecycle stops it right after the spawn
        self._stopping.begin(proc, reason, force=force, restart_reason=self._restart_reason)

    def _stop_for(self, reason: StopReason) -> None:
        """A watcher ends the live run (liveness failing, a job over its timeout), unless
        a stop is already under way."""
        if self._phase == "live" and self._stop_reason is None:
            self._stop_reason = reason
            self._begin_stop(reason, False)
