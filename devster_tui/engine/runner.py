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
import random
import signal as _signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from devster_tui.config.schema import HealthCheck, Task
from devster_tui.config.shell import command_argv, shell_argv
from devster_tui.engine.ensure import EnsureError, run_ensure
from devster_tui.engine.health import HealthMonitor, build_probe, log_matcher
from devster_tui.engine.interp import InterpolationError, substitute_ports
from devster_tui.engine.policy import (
    Next,
    PolicyState,
    StopReason,
    after_exit,
    condition_state,
    crash_looping,
    dependency_timeout,
    exit_success,
    started_enough,
)
from devster_tui.executors.base import Executor, ExitStatus, Process, ProcessSpec, SpawnError
from devster_tui.state.clock import Clock
from devster_tui.state.events import T
from devster_tui.state.model import EngineState, Status
from devster_tui.state.output import OutputStore
from devster_tui.state.store import Store

log = logging.getLogger(__name__)

LAST_LINES = 20
"""Output lines carried by ``task.exited`` and ``task.failed`` events."""

Phase = Literal["idle", "waiting", "preparing", "spawning", "live", "backoff"]

PortCheck = Callable[[Mapping[str, int]], list[str]]
"""Returns one message per declared port already in use."""


class StateWaiter:
    """Lets coroutines wait for "the store state changed", coalesced per loop iteration.

    The store notifies subscribers synchronously inside ``dispatch``; waking the waiters on
    the next loop iteration means they see the state after a whole synchronous step of the
    supervisor (an exit *and* the restart decision), never a transient in between.
    """

    def __init__(self) -> None:
        """Create a waiter with no pending wake-up."""
        self._futures: list[asyncio.Future[None]] = []
        self._scheduled = False

    def notify(self) -> None:
        """Schedule a wake-up of every current waiter (cheap; call from store subscribers)."""
        if self._scheduled or not self._futures:
            return
        self._scheduled = True
        asyncio.get_running_loop().call_soon(self._wake)

    def _wake(self) -> None:
        self._scheduled = False
        futures, self._futures = self._futures, []
        for fut in futures:
            if not fut.done():
                fut.set_result(None)

    async def changed(self, limit: float | None = None) -> None:
        """Return after the next state change, or after ``limit`` seconds."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._futures.append(fut)
        try:
            if limit is None:
                await fut
            else:
                # Not wait_for: when the wake-up and a cancel (a stop) land in the same loop
                # iteration, wait_for returns the result and swallows the cancel, and the
                # stopped runner waits on forever (a SIGTERM during a dependency wait hung).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(limit):
                        await fut
        finally:
            if fut in self._futures:
                self._futures.remove(fut)

    async def until(self, store: Store, predicate: Callable[[EngineState], bool]) -> None:
        """Return once ``predicate(store.state)`` holds (no timeout: cancel to give up)."""
        while not predicate(store.state):
            await self.changed()


@dataclass
class RunnerContext:
    """What every runner of one engine shares."""

    store: Store
    """Where events go."""
    output: OutputStore
    """Where output chunks go."""
    executor: Executor
    """Starts processes."""
    clock: Clock
    """Monotonic time for policy decisions and durations."""
    root: Path
    """The project directory."""
    waiter: StateWaiter
    """Wakes dependency waits on state changes."""
    check_ports: PortCheck
    """Port conflict check run before each spawn."""
    rng: random.Random = field(default_factory=random.Random)
    """Jitter source."""
    on_output_activity: Callable[[], None] = lambda: None
    """Called after each output chunk is stored (wakes printers)."""
    on_settled: Callable[[TaskRunner], None] = lambda _r: None
    """Called whenever a runner's lifecycle coroutine ends."""
    on_process: Callable[[TaskRunner, Process | None], None] = lambda _r, _p: None
    """Called with each spawned process, and with None once it has exited (pipes)."""
    secret_values: Mapping[str, str] = field(default_factory=dict)
    """Secret name -> value, handed to executors as ``ProcessSpec.secret_values``."""


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
        self._stop_task: asyncio.Task[None] | None = None
        self._exited = asyncio.Event()
        self._aux: list[asyncio.Task[None]] = []
        self._unsubscribe: list[Callable[[], None]] = []
        self._policy = PolicyState()
        self._run = 0
        self._crash_alarm = False
        self._stuck_alarm = False
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
        self._stop_task = None
        self.follow_up = None
        self._main = asyncio.create_task(self._guarded(reason), name=f"devster:{self.name}")
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
            self._cleanup_run()
            self._clear_alarms()
            self._ctx.on_settled(self)

    async def _wait_dependencies(self) -> bool:
        """Wait until every dependency meets its condition; False (and blocked) if it cannot."""
        if not self._deps or self.ignore_dependencies:
            return True
        self._phase = "waiting"
        store = self._ctx.store
        started = self._ctx.clock.monotonic()
        announced = False
        while True:
            state = store.state
            unmet: list[tuple[str, str, float | None]] = []
            for dep, spec in self._deps.items():
                verdict, why = condition_state(state.tasks.get(dep), spec.condition)
                if verdict == "impossible":
                    store.dispatch(
                        T.TASK_BLOCKED, self.name, reason=f"dependency {dep} {why}", on=[dep]
                    )
                    return False
                if verdict == "wait":
                    unmet.append(
                        (dep, spec.condition, dependency_timeout(spec.timeout, spec.condition))
                    )
            if not unmet:
                return True
            elapsed = self._ctx.clock.monotonic() - started
            remaining: list[float] = []
            for dep, condition, limit in unmet:
                if limit is None:
                    continue
                if elapsed >= limit:
                    store.dispatch(
                        T.TASK_BLOCKED,
                        self.name,
                        reason=f"dependency {dep} not {condition} after {limit:g}s",
                        on=[dep],
                    )
                    return False
                remaining.append(limit - elapsed)
            if not announced:
                announced = True
                names = ", ".join(f"{d} ({c})" for d, c, _ in unmet)
                store.dispatch(
                    T.TASK_WAITING,
                    self.name,
                    reason=f"waiting for {names}",
                    on=[d for d, _, _ in unmet],
                )
            await self._ctx.waiter.changed(min(remaining) if remaining else None)

    async def _run_once(self, reason: str) -> str | None:
        """One run: prepare, spawn, wait, decide.  Returns the next start reason, or None."""
        ctx, store, task = self._ctx, self._ctx.store, self.task
        current = store.state.tasks.get(self.name)
        self._run = (current.run if current is not None else self._run) + 1
        run = self._run
        self._phase = "preparing"
        self._exited = asyncio.Event()
        reset = {"reset": True} if self._budget_reset else {}
        self._budget_reset = False
        tasks = store.state.tasks
        self.seen_runs = {d: t.run if (t := tasks.get(d)) is not None else 0 for d in self._deps}
        store.dispatch(T.TASK_STARTING, self.name, run=run, reason=reason, **reset)
        ctx.output.mark(self.name, f"── run {run} ({reason}) ──", run)
        self._aux.append(asyncio.create_task(self._watch_stuck(run)))

        try:
            ports = dict(task.ports)
            argv = self._argv(ports)
            env = {k: substitute_ports(v, ports) for k, v in self._env.items()}
        except InterpolationError as exc:
            self._fail(f"cannot resolve the command: {exc}")
            return None
        cwd = str((ctx.root / task.cwd) if task.cwd else ctx.root)
        if task.ensure:
            try:
                await asyncio.to_thread(run_ensure, task.ensure, ctx.root, env, ports)
            except EnsureError as exc:
                self._fail(str(exc))
                return None
        if ports:
            conflicts = await asyncio.to_thread(ctx.check_ports, ports)
            if conflicts:
                self._fail("; ".join(conflicts))
                return None

        spec = ProcessSpec(
            task=self.name,
            argv=argv,
            env=env,
            cwd=cwd,
            stdin="pipe" if self.stdin_pipe else "null",
            stop_signal=int(_signal.Signals[task.stop.signal]),
            stop_timeout=task.stop.timeout,
            secret_values=ctx.secret_values,
        )
        output, name, notify = ctx.output, self.name, ctx.on_output_activity

        def on_output(stream: str, chunk: bytes) -> None:
            output.append(name, stream, chunk, run)
            notify()

        def on_eof(stream: str) -> None:
            output.finish(name, stream)
            notify()

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
            argv_summary=_summary(argv),
        )
        if self._stop_reason is not None:
            # A stop arrived while spawning: carry it out now.
            self._begin_stop(self._stop_reason, False)
        self._start_watchers(run, env, cwd, ports)
        ctx.on_process(self, proc)

        status = await proc.wait()
        self._exited.set()
        self._proc = None
        ctx.on_process(self, None)
        self._phase = "preparing"
        self._cleanup_run()
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
        store.dispatch(
            T.TASK_EXITED,
            self.name,
            run=run,
            code=status.code,
            signal=status.signal_name,
            success=success,
            duration=round(ran_for, 6),
            stopped=stop is not None,
            next=outcome.next.value,
            last_lines=last_lines,
            **({"why": status.reason} if status.reason else {}),
        )
        last_exit = f"signal {status.signal_name}" if status.signal else f"exit {status.code}"
        if ran_for >= task.restart.stable_after and self._crash_alarm:
            self._crash_alarm = False
            store.dispatch(T.TASK_ALARM, self.name, alarm="crash_loop", active=False, detail="")
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
        self._crash_loop_alarm(now)
        self._phase = "backoff"
        store.dispatch(
            T.TASK_BACKOFF, self.name, delay=round(outcome.delay, 6), attempt=outcome.attempt
        )
        return "restart", outcome.delay

    def _crash_loop_alarm(self, now: float) -> None:
        alarms = self.task.alarms
        if not self._crash_alarm and crash_looping(
            self._policy.restart_times, now, alarms.crash_loop, alarms.crash_loop_window
        ):
            self._crash_alarm = True
            self._ctx.store.dispatch(
                T.TASK_ALARM,
                self.name,
                alarm="crash_loop",
                active=True,
                detail=f"{alarms.crash_loop} restarts within {alarms.crash_loop_window:g}s",
            )

    # ------------------------------------------------------------------ helpers

    def _argv(self, ports: Mapping[str, int]) -> list[str]:
        cmd = self.task.cmd
        if cmd is None:
            return []  # only a docker build layer's task (config checks): the build is the job
        if isinstance(cmd, str):
            return shell_argv(substitute_ports(cmd, ports))
        return [substitute_ports(arg, ports) for arg in cmd]

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
        if self._stop_task is not None and not self._stop_task.done():
            if force:
                proc.send_signal(_signal.SIGKILL)
            return
        stop = self.task.stop
        how = "SIGKILL" if force else ("command" if stop.command is not None else stop.signal)
        detail = {}
        if reason is StopReason.RESTART:
            why = self._restart_reason
            detail = {"detail": "restarting" if why == "restart" else f"restarting: {why}"}
        self._ctx.store.dispatch(
            T.TASK_STOPPING, self.name, reason=reason.value, signal=how, **detail
        )
        self._stop_task = asyncio.create_task(self._stop_process(proc, force))

    async def _stop_process(self, proc: Process, force: bool) -> None:
        try:
            if force:
                await proc.stop(_signal.SIGKILL, 0.0)
                return
            stop = self.task.stop
            if stop.command is None:
                await proc.stop(int(_signal.Signals[stop.signal]), stop.timeout)
                return
            await self._run_stop_command(stop.command)
            try:
                await asyncio.wait_for(self._exited.wait(), stop.timeout)
            except TimeoutError:
                await proc.stop(_signal.SIGKILL, 0.0)
        except Exception:
            log.exception("stopping task %s failed; killing its group", self.name)
            with contextlib.suppress(Exception):
                proc.send_signal(_signal.SIGKILL)

    async def _run_stop_command(self, command: str | list[str]) -> None:
        argv = command_argv(command)
        ports = dict(self.task.ports)
        argv = [substitute_ports(a, ports) for a in argv]
        spec = ProcessSpec(
            task=f"{self.name}:stop",
            argv=argv,
            env={k: substitute_ports(v, ports) for k, v in self._env.items()},
            cwd=str((self._ctx.root / self.task.cwd) if self.task.cwd else self._ctx.root),
            secret_values=self._ctx.secret_values,
        )
        output, name, run = self._ctx.output, self.name, self._run
        try:
            proc = await self._ctx.executor.spawn(
                spec, lambda s, c: output.append(name, s, c, run), lambda _s: None
            )
        except SpawnError as exc:
            self._ctx.store.dispatch(
                T.WARNING, self.name, message=f"{self.name}: stop command failed: {exc}"
            )
            return
        try:
            await asyncio.wait_for(proc.wait(), self.task.stop.timeout)
        except TimeoutError:
            await proc.stop(_signal.SIGKILL, 0.0)

    def _start_watchers(
        self, run: int, env: Mapping[str, str], cwd: str, ports: Mapping[str, int]
    ) -> None:
        task, ctx, store = self.task, self._ctx, self._ctx.store
        line_rules: list[tuple[Callable[[bytes], bool], Callable[[bytes], None]]] = []
        if task.ready_log:
            matched = log_matcher(task.ready_log)

            def ready(line: bytes) -> None:
                text = line[:200].decode("utf-8", "replace")
                store.dispatch(T.TASK_LOG_READY, self.name, line=text)

            line_rules.append((matched, ready))
        for probe_name, check in (("health", task.health), ("liveness", task.liveness)):
            if check is None:
                continue
            if check.log is not None:
                matched = log_matcher(check.log)

                def healthy(line: bytes, probe: str = probe_name) -> None:
                    text = line[:200].decode("utf-8", "replace")
                    store.dispatch(
                        T.TASK_HEALTH,
                        self.name,
                        healthy=True,
                        probe=probe,
                        detail=f"line matched: {text}",
                        failures=0,
                    )

                line_rules.append((matched, healthy))
                continue
            self._aux.append(asyncio.create_task(self._monitor(probe_name, check, env, cwd, ports)))
        if line_rules:
            # Each rule fires once; the subscription ends with the last one, so a task's
            # output costs no per-line work for the rest of the run.
            unsubscribe: list[Callable[[], None]] = []

            def on_line(_stream: str, line: bytes, line_run: int) -> None:
                if line_run != run or not line_rules:
                    return
                for rule in tuple(line_rules):
                    if rule[0](line):
                        line_rules.remove(rule)
                        rule[1](line)
                if not line_rules:
                    unsubscribe[0]()

            unsubscribe.append(ctx.output.subscribe_lines(self.name, on_line))
            self._unsubscribe.append(unsubscribe[0])
        if task.kind == "job" and task.timeout is not None:
            self._aux.append(asyncio.create_task(self._job_timer(task.timeout)))

    async def _monitor(
        self,
        probe_name: str,
        check: HealthCheck,
        env: Mapping[str, str],
        cwd: str,
        ports: Mapping[str, int],
    ) -> None:
        store = self._ctx.store
        probe = build_probe(
            check,
            executor=self._ctx.executor,
            task=self.name,
            env=env,
            cwd=cwd,
            resolve=lambda text: substitute_ports(text, ports),
        )
        if probe is None:
            return

        def on_result(healthy: bool, detail: str, failures: int) -> None:
            store.dispatch(
                T.TASK_HEALTH,
                self.name,
                healthy=healthy,
                probe=probe_name,
                detail=detail,
                failures=failures,
            )
            if probe_name == "liveness" and not healthy and self._stop_reason is None:
                self._stop_reason = StopReason.LIVENESS
                self._begin_stop(StopReason.LIVENESS, False)

        monitor = HealthMonitor(check, probe, on_result, self._ctx.clock.monotonic)
        try:
            await monitor.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s probe of task %s crashed", probe_name, self.name)

    async def _job_timer(self, limit: float) -> None:
        await asyncio.sleep(limit)
        if self._phase == "live" and self._stop_reason is None:
            self._stop_reason = StopReason.TIMEOUT
            self._begin_stop(StopReason.TIMEOUT, False)

    async def _watch_stuck(self, run: int) -> None:
        task, store = self.task, self._ctx.store
        has_health = task.health is not None

        def ok(state: EngineState) -> bool:
            current = state.tasks.get(self.name)
            if current is None or current.run != run:
                return True
            if current.status not in (Status.STARTING, Status.RUNNING, Status.UNHEALTHY):
                return True
            return started_enough(
                current.status, has_health, task.ready_log is not None, current.log_ready
            )

        try:
            await asyncio.wait_for(self._ctx.waiter.until(store, ok), task.alarms.stuck_starting)
            return
        except TimeoutError:
            pass
        self._stuck_alarm = True
        store.dispatch(
            T.TASK_ALARM,
            self.name,
            alarm="stuck_starting",
            active=True,
            detail=f"still starting after {task.alarms.stuck_starting:g}s",
        )
        await self._ctx.waiter.until(store, ok)
        self._stuck_alarm = False
        store.dispatch(T.TASK_ALARM, self.name, alarm="stuck_starting", active=False, detail="")

    def _cleanup_run(self) -> None:
        for aux in self._aux:
            aux.cancel()
        self._aux.clear()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._stuck_alarm:
            self._stuck_alarm = False
            self._ctx.store.dispatch(
                T.TASK_ALARM, self.name, alarm="stuck_starting", active=False, detail=""
            )

    def _clear_alarms(self) -> None:
        if self._crash_alarm and self._stop_reason is not None:
            self._crash_alarm = False
            self._ctx.store.dispatch(
                T.TASK_ALARM, self.name, alarm="crash_loop", active=False, detail=""
            )


def _summary(argv: list[str], limit: int = 200) -> str:
    text = " ".join(argv)
    return text if len(text) <= limit else text[: limit - 1] + "…"
