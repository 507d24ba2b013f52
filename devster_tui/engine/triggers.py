"""Observers and what their firing does: file, interval, task-finished and log-pattern triggers.

Why one hub: every observer, whatever its kind, ends in the same decision for each task it
triggers (:meth:`TriggerHub.fire`): a task the user stopped stays stopped, file triggers
respect the per-task watch toggle, ``trigger_mode: manual`` only marks the task pending, a
running job queues exactly one follow-up run (never a second concurrent run), a running
service restarts, and an idle task starts with what it depends on.  The hub also carries
the cascade rule for re-run jobs: their dependents restart only after the job succeeds, and
a failed re-run leaves them running and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from devster_tui.config.schema import Observer
from devster_tui.engine.background import spawn_guarded
from devster_tui.engine.policy import TriggerSource, on_trigger
from devster_tui.state.events import Event, T
from devster_tui.state.model import Status

if TYPE_CHECKING:
    from devster_tui.engine.protocols import EngineCore
    from devster_tui.watch.files import Burst, FileWatcher

log = logging.getLogger(__name__)


class TriggerHub:
    """Runs the observers of one engine and routes their firings to tasks."""

    def __init__(self, engine: EngineCore) -> None:
        """Map each observer to the active tasks it triggers; nothing runs until :meth:`start`.

        Args:
            engine: The engine whose tasks are triggered.
        """
        self._engine = engine
        observers = engine.loaded.project.observers
        self.observers: dict[str, Observer] = dict(observers)
        """The project's observers."""
        self.targets: dict[str, list[str]] = {}
        """Observer name -> the tasks it triggers, in definition order."""
        for name, task in engine.tasks.items():
            for obs in task.triggers:
                if obs in observers:
                    self.targets.setdefault(obs, []).append(name)
        self._jobs: list[asyncio.Task[None]] = []
        self._unsubscribe: list[Callable[[], None]] = []
        self.watchers: dict[str, FileWatcher] = {}
        """Observer name -> its running :class:`~devster_tui.watch.files.FileWatcher`."""
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the file watchers, timers and log matchers of observers that trigger tasks."""
        engine = self._engine
        for name, targets in self.targets.items():
            spec = self.observers[name]
            if not targets:
                continue
            if spec.files is not None:
                from devster_tui.watch.files import FileWatcher

                watcher = FileWatcher(
                    spec.files,
                    engine.loaded.root,
                    self._on_burst(name),
                    on_warning=self._on_warning(name),
                )
                self.watchers[name] = watcher
                self._guard(name, watcher.run())
            elif spec.interval is not None:
                self._guard(name, self._tick(name, spec.interval.every))
            elif spec.log is not None:
                self._subscribe_log(name, spec)

    def _on_burst(self, observer: str) -> Callable[[Burst], None]:
        def on_burst(burst: Burst) -> None:
            self.fire(observer, f"changed: {burst.summary()}", "files")

        return on_burst

    def _on_warning(self, observer: str) -> Callable[[str], None]:
        def on_warning(message: str) -> None:
            self._warn(f"observer {observer}: {message}")

        return on_warning

    def _guard(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        def stopped(exc: Exception) -> None:
            self._warn(f"observer {name} stopped: {exc}")

        self._jobs.append(spawn_guarded(coro, f"observer:{name}", logger=log, on_error=stopped))

    async def _tick(self, name: str, every: float) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + every
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            due += every
            self.fire(name, f"every {every:g}s", "interval")

    def _subscribe_log(self, name: str, spec: Observer) -> None:
        log_spec = spec.log
        assert log_spec is not None
        pattern = re.compile(log_spec.pattern.encode("utf-8", "surrogateescape"))
        wanted = log_spec.stream

        def on_line(stream: str, line: bytes, _run: int) -> None:
            if (wanted == "both" or stream == wanted) and pattern.search(line):
                text = line[:200].decode("utf-8", "replace")
                self.fire(name, f"{log_spec.task} printed: {text}", "log")

        self._unsubscribe.append(self._engine.output.subscribe_lines(log_spec.task, on_line))

    async def close(self) -> None:
        """Stop every observer (idempotent); nothing fires afterwards."""
        self._closed = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        jobs, self._jobs = self._jobs, []
        for job in jobs:
            job.cancel()
        for job in jobs:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job

    def can_start(self) -> bool:
        """Whether an armed observer can still start a task on its own.

        File and interval observers and manual gates can, while a task they trigger is
        not stopped by the user (and, when the user named tasks, is one of those); a
        log observer can while the task it reads is active.  Task-finished observers
        need another task to run, so they keep nothing up by themselves.
        """
        engine = self._engine
        state = engine.store.state.tasks
        for observer, targets in self.targets.items():
            spec = self.observers[observer]
            if spec.kind == "task":
                continue
            if spec.log is not None:
                source = engine.runners.get(spec.log.task)
                if source is None or not source.active:
                    continue
            for name in targets:
                if engine.explicit_selection and name not in engine.selected:
                    continue
                task = state.get(name)
                if task is not None and task.status is not Status.STOPPED:
                    return True
        return False

    def _warn(self, message: str) -> None:
        if not self._closed:
            self._engine.store.dispatch(T.WARNING, message=message)

    # ------------------------------------------------------------------ firing

    def fire(self, observer: str, detail: str, kind: TriggerSource) -> None:
        """Observer ``observer`` fired: act on each task it triggers.

        Args:
            observer: The observer name.
            detail: What happened (shown with the task).
            kind: ``files``, ``interval``, ``task``, ``log`` or ``manual``.
        """
        if self._closed:
            return
        for task in self.targets.get(observer, ()):
            self.fire_task(task, observer, detail, kind)

    def fire_task(self, name: str, observer: str, detail: str, kind: TriggerSource) -> None:
        """One trigger reaching one task (see the module docstring for the rules)."""
        engine = self._engine
        if engine.stopping or name not in engine.tasks:
            return
        if engine.explicit_selection and name not in engine.selected:
            return
        state = engine.store.state.tasks.get(name)
        if state is None:
            return
        store = engine.store
        task = engine.tasks[name]
        runner = engine.runner(name)
        action = on_trigger(
            source=kind,
            status=state.status,
            kind=task.kind,
            live=runner.live,
            active=runner.active,
            manual_mode=task.trigger_mode == "manual",
            watching=state.watching,
        )
        if action == "ignore":
            return
        if action == "pending":
            store.dispatch(
                T.TASK_PENDING,
                name,
                trigger=observer,
                detail=f"{detail}; waiting for you to trigger it",
            )
            return
        store.dispatch(T.TASK_TRIGGERED, name, trigger=observer, detail=detail)
        if action == "queue":
            runner.follow_up = "trigger"
            store.dispatch(T.TASK_PENDING, name, trigger=observer, detail="queued: runs again next")
        elif action == "restart":
            engine.spawn(runner.restart("trigger"), f"trigger restart of {name}")
        else:
            engine.start_with_dependencies([name], "trigger")

    # ------------------------------------------------------------------ events

    def on_event(self, event: Event) -> None:
        """Task-finished observers, and the message for a failed re-run with live dependents."""
        if self._closed or event.task is None:
            return
        if event.type == T.TASK_EXITED and not event.data.get("stopped"):
            success = bool(event.data.get("success"))
            self._finished(event.task, success, "succeeded" if success else "failed")
            if not success:
                self._failed_rerun(event)
        elif event.type == T.TASK_SPAWN_FAILED:
            self._finished(event.task, False, "could not start")

    def _finished(self, task: str, success: bool, what: str) -> None:
        for name, spec in self.observers.items():
            watch = spec.task
            if watch is None or watch.task != task:
                continue
            if watch.on == "any" or (watch.on == "success") == success:
                self.fire(name, f"{task} {what}", "task")

    def _failed_rerun(self, event: Event) -> None:
        engine = self._engine
        name = event.task
        assert name is not None
        if name not in engine.tasks or engine.tasks[name].kind != "job":
            return
        live = [
            dep
            for dep in engine.graph.direct_dependents(name)
            if dep in engine.tasks and engine.runner(dep).live
        ]
        if not live:
            return
        code, signal = event.data.get("code"), event.data.get("signal")
        how = f"signal {signal}" if signal else f"exit {code}"
        engine.store.dispatch(
            T.WARNING,
            name,
            message=f"{name} failed ({how}); {', '.join(live)} keep running the previous build",
        )
