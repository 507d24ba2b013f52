"""What watches one run of a task: ``ready_log`` and log probes, health and liveness
monitors, a job's timeout, and the stuck-starting and crash-loop alarms.

Why apart from the runner: these run beside the lifecycle for the length of one run and end
with it; none of them decides what follows an exit.  They report what they see as events
(``task.log_ready``, ``task.health``, ``task.alarm``), and the two that end a run (a failing
liveness probe, a job over its ``timeout``) only hand their reason to the runner, which stops
the process the one way every stop goes.  Line rules cost nothing per line once they all
matched: the output subscription ends with the last one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from devster_tui.config.schema import HealthCheck, Task
from devster_tui.engine.background import spawn_guarded
from devster_tui.engine.context import RunnerContext
from devster_tui.engine.health import HealthMonitor, build_probe, log_matcher
from devster_tui.engine.interp import substitute_ports
from devster_tui.engine.policy import StopReason, crash_looping, started_enough
from devster_tui.state.events import T
from devster_tui.state.model import EngineState, Status

log = logging.getLogger(__name__)

LineRule = tuple[Callable[[bytes], bool], Callable[[bytes], None]]
"""A line test and what to do with the first line that passes it."""


class Alarms:
    """The crash-loop and stuck-starting alarms of one task (raised and cleared once)."""

    def __init__(self, name: str, task: Task, ctx: RunnerContext) -> None:
        """No alarm is raised yet."""
        self._name = name
        self._task = task
        self._ctx = ctx
        self.crash_loop = False
        """Whether the crash-loop alarm is raised."""
        self.stuck = False
        """Whether the stuck-starting alarm is raised."""

    def _dispatch(self, alarm: str, active: bool, detail: str = "") -> None:
        self._ctx.store.dispatch(
            T.TASK_ALARM, self._name, alarm=alarm, active=active, detail=detail
        )

    def check_crash_loop(self, restart_times: Sequence[float], now: float) -> None:
        """Raise the crash-loop alarm when the restarts so far are a crash loop."""
        alarms = self._task.alarms
        if not self.crash_loop and crash_looping(
            restart_times, now, alarms.crash_loop, alarms.crash_loop_window
        ):
            self.crash_loop = True
            detail = f"{alarms.crash_loop} restarts within {alarms.crash_loop_window:g}s"
            self._dispatch("crash_loop", True, detail)

    def clear_crash_loop(self) -> None:
        """Clear the crash-loop alarm if it is raised (a stable run, a final stop)."""
        if self.crash_loop:
            self.crash_loop = False
            self._dispatch("crash_loop", False)

    def clear_stuck(self) -> None:
        """Clear the stuck-starting alarm if it is raised (the run ended)."""
        if self.stuck:
            self.stuck = False
            self._dispatch("stuck_starting", False)

    async def watch_stuck(self, run: int) -> None:
        """Raise the stuck-starting alarm when run ``run`` is not started enough within
        ``alarms.stuck_starting`` seconds, and clear it once it is."""
        task, store, name = self._task, self._ctx.store, self._name
        has_health = task.health is not None

        def ok(state: EngineState) -> bool:
            current = state.tasks.get(name)
            if current is None or current.run != run:
                return True
            if current.status not in (Status.STARTING, Status.RUNNING, Status.UNHEALTHY):
                return True
            return started_enough(
                current.status, has_health, task.ready_log is not None, current.log_ready
            )

        waiter = self._ctx.waiter
        try:
            await asyncio.wait_for(waiter.until(store, ok), task.alarms.stuck_starting)
            return
        except TimeoutError:
            pass
        self.stuck = True
        self._dispatch(
            "stuck_starting", True, f"still starting after {task.alarms.stuck_starting:g}s"
        )
        await waiter.until(store, ok)
        self.stuck = False
        self._dispatch("stuck_starting", False)


class RunWatchers:
    """The watchers of one task's current run; :meth:`end` stops them all."""

    def __init__(
        self,
        name: str,
        task: Task,
        ctx: RunnerContext,
        alarms: Alarms,
        stop_for: Callable[[StopReason], None],
    ) -> None:
        """Prepare the watchers of task ``name``.

        Args:
            name: The task.
            task: Its configuration.
            ctx: The runners' shared context.
            alarms: The task's alarms.
            stop_for: Ends the live run for a reason (a failing liveness probe, a job's
                timeout) unless a stop is already under way.
        """
        self._name = name
        self._task = task
        self._ctx = ctx
        self._alarms = alarms
        self._stop_for = stop_for
        self._aux: list[asyncio.Task[None]] = []
        self._unsubscribe: list[Callable[[], None]] = []

    def watch_stuck(self, run: int) -> None:
        """Start the stuck-starting alarm's watch of run ``run`` (before its spawn)."""
        self._spawn(self._alarms.watch_stuck(run), "stuck-starting alarm")

    def start(self, run: int, env: Mapping[str, str], cwd: str, ports: Mapping[str, int]) -> None:
        """Start the watchers of run ``run``, whose process was just spawned.

        Args:
            run: The run number (line rules read that run's lines only).
            env: The process environment (for exec probes).
            cwd: Its working directory (for exec probes).
            ports: The task's ports (``${ports.NAME}`` in probes).
        """
        task = self._task
        rules = self._line_rules()
        for probe_name, check in (("health", task.health), ("liveness", task.liveness)):
            if check is not None and check.log is None:
                monitor = self._monitor(probe_name, check, env, cwd, ports)
                self._spawn(monitor, f"{probe_name} probe")
        if rules:
            self._subscribe(run, rules)
        if task.kind == "job" and task.timeout is not None:
            self._spawn(self._job_timer(task.timeout), "job timeout")

    def end(self) -> None:
        """The run ended: stop every watcher and clear the stuck-starting alarm."""
        for aux in self._aux:
            aux.cancel()
        self._aux.clear()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self._alarms.clear_stuck()

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        self._aux.append(spawn_guarded(coro, f"{what} of {self._name}", logger=log))

    def _line_rules(self) -> list[LineRule]:
        """``ready_log`` and the log probes, in the order they were declared."""
        task, store, name = self._task, self._ctx.store, self._name
        rules: list[LineRule] = []
        if task.ready_log:

            def ready(line: bytes) -> None:
                text = line[:200].decode("utf-8", "replace")
                store.dispatch(T.TASK_LOG_READY, name, line=text)

            rules.append((log_matcher(task.ready_log), ready))
        for probe_name, check in (("health", task.health), ("liveness", task.liveness)):
            if check is None or check.log is None:
                continue

            def healthy(line: bytes, probe: str = probe_name) -> None:
                text = line[:200].decode("utf-8", "replace")
                store.dispatch(
                    T.TASK_HEALTH,
                    name,
                    healthy=True,
                    probe=probe,
                    detail=f"line matched: {text}",
                    failures=0,
                )

            rules.append((log_matcher(check.log), healthy))
        return rules

    def _subscribe(self, run: int, rules: list[LineRule]) -> None:
        # Each rule fires once; the subscription ends with the last one, so a task's
        # output costs no per-line work for the rest of the run.
        unsubscribe: list[Callable[[], None]] = []

        def on_line(_stream: str, line: bytes, line_run: int) -> None:
            if line_run != run or not rules:
                return
            for rule in tuple(rules):
                if rule[0](line):
                    rules.remove(rule)
                    rule[1](line)
            if not rules:
                unsubscribe[0]()

        unsubscribe.append(self._ctx.output.subscribe_lines(self._name, on_line))
        self._unsubscribe.append(unsubscribe[0])

    async def _monitor(
        self,
        probe_name: str,
        check: HealthCheck,
        env: Mapping[str, str],
        cwd: str,
        ports: Mapping[str, int],
    ) -> None:
        store, name = self._ctx.store, self._name
        probe = build_probe(
            check,
            executor=self._ctx.executor,
            task=name,
            env=env,
            cwd=cwd,
            resolve=lambda text: substitute_ports(text, ports),
        )
        if probe is None:
            return

        def on_result(healthy: bool, detail: str, failures: int) -> None:
            store.dispatch(
                T.TASK_HEALTH,
                name,
                healthy=healthy,
                probe=probe_name,
                detail=detail,
                failures=failures,
            )
            if probe_name == "liveness" and not healthy:
                self._stop_for(StopReason.LIVENESS)

        monitor = HealthMonitor(check, probe, on_result, self._ctx.clock.monotonic)
        try:
            await monitor.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s probe of task %s crashed", probe_name, name)

    async def _job_timer(self, limit: float) -> None:
        await asyncio.sleep(limit)
        self._stop_for(StopReason.TIMEOUT)
