"""Manual gates: hold a task in "waiting for approval" once its dependencies are met.

Why a hold inside the task's lifecycle rather than a separate start path: the gate sits
between "dependencies met" and "spawn", so a gated task is shown as GATED only when it
could really run, a stop while it waits simply cancels the wait, and an approval that
arrives early (``devster trigger`` before the dependencies are healthy) is kept as a token
that the next hold consumes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from devster_tui.config.schema import ManualObserver, Observer, Task
from devster_tui.state.events import T
from devster_tui.state.store import Store

if TYPE_CHECKING:
    from devster_tui.engine.protocols import RunnerHandle


class Gates:
    """The manual gates of one engine: which tasks they hold and who approved what."""

    def __init__(
        self, store: Store, observers: Mapping[str, Observer], tasks: Mapping[str, Task]
    ) -> None:
        """Find each task's manual gate (the first manual observer among its triggers).

        Args:
            store: Where gate events go.
            observers: The project's observers.
            tasks: The active tasks.
        """
        self._store = store
        self._gates: dict[str, tuple[str, ManualObserver]] = {}
        for name, task in tasks.items():
            for obs in task.triggers:
                spec = observers.get(obs)
                if spec is not None and spec.manual is not None:
                    self._gates[name] = (obs, spec.manual)
                    break
        self._tokens: set[str] = set()
        self._always: set[str] = set()
        self._waiting: dict[str, asyncio.Event] = {}

    def gated(self, name: str) -> bool:
        """Whether a manual gate holds task ``name``."""
        return name in self._gates

    def observer(self, name: str) -> str | None:
        """The name of the gate observer of task ``name``, if any."""
        gate = self._gates.get(name)
        return gate[0] if gate is not None else None

    def waiting(self, name: str) -> bool:
        """Whether task ``name`` waits at its gate right now."""
        return name in self._waiting

    def grant(self, name: str) -> None:
        """Let the next run of ``name`` pass its gate once (an explicit start by name)."""
        if name in self._gates:
            self._tokens.add(name)

    def approve(self, name: str, always: bool = False) -> bool:
        """Approve the gate of ``name`` once, or for the rest of the session.

        Args:
            name: The task.
            always: Open the gate for the session (also when the observer says
                ``approve: always``).

        Returns:
            Whether a waiting run was released (False: the approval is kept for the next
            run, which the caller should start).
        """
        gate = self._gates.get(name)
        if gate is None:
            return False
        if always or gate[1].approve == "always":
            self._always.add(name)
        event = self._waiting.pop(name, None)
        if event is not None:
            event.set()
            return True
        self._tokens.add(name)
        return False

    async def hold(self, runner: RunnerHandle, reason: str) -> None:
        """Wait at the gate of ``runner``'s task until it is approved (cancel to give up).

        Args:
            runner: The task's runner (called from its lifecycle, dependencies met).
            reason: The start reason of the run that waits.
        """
        name = runner.name
        gate = self._gates.get(name)
        if gate is None or name in self._always:
            return
        if name in self._tokens:
            self._tokens.discard(name)
            return
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError  # never start waiting once a stop was requested
        observer, spec = gate
        event = asyncio.Event()
        self._waiting[name] = event
        self._store.dispatch(T.TASK_GATE, name, observer=observer, prompt=spec.prompt, waiting=True)
        try:
            await event.wait()
        finally:
            if self._waiting.get(name) is event:
                del self._waiting[name]
        self._store.dispatch(
            T.TASK_GATE, name, observer=observer, prompt=spec.prompt, waiting=False
        )
