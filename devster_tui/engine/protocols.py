"""The narrow views of the engine that its parts work through.

Why: the trigger hub, the dependency rules, the command table and the secrets step each
need a few things of the engine (its store, its tasks, a runner, a way to start tasks),
not the whole :class:`~devster_tui.engine.supervisor.Engine`.  Typing them against these
Protocols keeps ``supervisor`` the only module that knows the Engine, so the parts never
import it (an import-linter contract keeps it so) and each can be tested with a small
stand-in.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from devster_tui.config.graph import TaskGraph
    from devster_tui.config.loader import LoadedProject
    from devster_tui.config.schema import Task
    from devster_tui.config.secrets import SecretValues
    from devster_tui.engine.runner import TaskRunner
    from devster_tui.state.output import OutputStore
    from devster_tui.state.store import Store


class EngineCore(Protocol):
    """What the engine's parts may use of it."""

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

    def runner(self, name: str) -> TaskRunner:
        """The runner of task ``name``."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, object], name: str = "") -> None:
        """Run ``coro`` in the background, guarded: an exception is logged, never lost."""
        ...

    def start_with_dependencies(self, names: Sequence[str], reason: str = "start") -> list[str]:
        """Start ``names`` plus the dependencies they need; the tasks started."""
        ...


class SecretsHolder(Protocol):
    """What resolving and installing the project's secrets needs of the engine."""

    @property
    def store(self) -> Store:
        """State and event log (redaction is installed on it)."""
        ...

    @property
    def output(self) -> OutputStore:
        """Every task's output (redaction is installed on it)."""
        ...

    @property
    def loaded(self) -> LoadedProject:
        """The project being run."""
        ...

    secrets: SecretValues | None
    """The resolved secrets (None until resolved)."""
