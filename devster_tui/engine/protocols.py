"""The narrow views of the engine that its parts work through.

Why: the trigger hub, the dependency rules, the gates, the command table and the secrets
step each need a few things of the engine (its store, its tasks, a runner, a way to start
tasks), or of a runner (is it live, restart it), not the whole
:class:`~devster_tui.engine.supervisor.Engine` or
:class:`~devster_tui.engine.runner.TaskRunner`.  Typing them against these Protocols keeps
``supervisor`` the only module that knows the Engine and keeps this module below the runner,
so the parts never import either (the import-linter contracts on ``devster_tui.engine`` in
pyproject.toml keep it so), and each can be tested with a small stand-in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from devster_tui.engine.policy import StopReason

if TYPE_CHECKING:
    from devster_tui.config.graph import TaskGraph
    from devster_tui.config.loader import LoadedProject
    from devster_tui.config.schema import Task
    from devster_tui.config.secrets import SecretValues
    from devster_tui.state.output import OutputStore
    from devster_tui.state.store import Store


class RunnerHandle(Protocol):
    """What the engine's parts may use of one task's runner
    (:class:`~devster_tui.engine.runner.TaskRunner` provides it)."""

    @property
    def name(self) -> str:
        """The task's name."""
        ...

    @property
    def active(self) -> bool:
        """Whether its lifecycle runs (waiting, live or in backoff)."""
        ...

    @property
    def live(self) -> bool:
        """Whether a process exists (or is being spawned)."""
        ...

    @property
    def seen_runs(self) -> Mapping[str, int]:
        """Each dependency's run number when the current run started."""
        ...

    follow_up: str | None
    """A start reason queued while a run is live: one more run follows it."""

    def start(self, reason: str = "start") -> bool:
        """Start the lifecycle unless it is active; whether it started."""
        ...

    async def stop(self, reason: StopReason = StopReason.USER, force: bool = False) -> None:
        """Stop the task and wait until its lifecycle has ended."""
        ...

    async def restart(self, reason: str = "restart") -> None:
        """Restart now (a live process stops gracefully first)."""
        ...

    def reset_restart_budget(self) -> None:
        """Clear the restart counter and window."""
        ...


class ProjectView(Protocol):
    """The store, the output and the project: what every part of the engine reads."""

    @property
    def store(self) -> Store:
        """State and event log."""
        ...

    @property
    def output(self) -> OutputStore:
        """Every task's output."""
        ...

    @property
    def loaded(self) -> LoadedProject:
        """The project being run."""
        ...


class EngineCore(ProjectView, Protocol):
    """What the engine's parts may use of it."""

    @property
    def tasks(self) -> Mapping[str, Task]:
        """Tasks active under the current profiles."""
        ...

    @property
    def graph(self) -> TaskGraph:
        """The task graph."""
        ...

    @property
    def selected(self) -> Sequence[str]:
        """Tasks the engine started (the selection's closure)."""
        ...

    @property
    def explicit_selection(self) -> bool:
        """Whether the user named the tasks to run (triggers act on those only)."""
        ...

    @property
    def stopping(self) -> bool:
        """Whether shutdown has begun."""
        ...

    @property
    def runners(self) -> Mapping[str, RunnerHandle]:
        """Task name -> its runner (empty until the engine starts)."""
        ...

    def runner(self, name: str) -> RunnerHandle:
        """The runner of task ``name``."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, object], name: str = "") -> asyncio.Task[None]:
        """Run ``coro`` in the background, guarded: an exception is logged, never lost."""
        ...

    def start_with_dependencies(self, names: Sequence[str], reason: str = "start") -> list[str]:
        """Start ``names`` plus the dependencies they need; the tasks started."""
        ...


class SecretsHolder(ProjectView, Protocol):
    """What resolving and installing the project's secrets needs of the engine (redaction
    is installed on its store and output)."""

    secrets: SecretValues | None
    """The resolved secrets (None until resolved)."""
