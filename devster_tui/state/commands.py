"""Commands: what clients (TUI, CLI, API) ask the engine to do, and the port they send them to.

Clients never touch executors; they build a :class:`Command` and hand it to a
:class:`Controller`.  The in-process engine implements it directly; the API client
implements it over the control socket.  Both answer with a :class:`CommandResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

Action = Literal[
    "start",
    "stop",
    "restart",
    "trigger",
    "approve",
    "set_autorestart",
    "set_watch",
    "send_stdin",
    "shutdown",
]
"""Every action a client can ask for."""

ACTIONS: tuple[Action, ...] = (
    "start",
    "stop",
    "restart",
    "trigger",
    "approve",
    "set_autorestart",
    "set_watch",
    "send_stdin",
    "shutdown",
)

OBSERVE_GUARDED: frozenset[Action] = frozenset({"stop", "restart", "send_stdin"})
"""Actions that need ``confirmed=True`` on a ``mode: observe`` task."""


@dataclass(frozen=True, slots=True)
class Command:
    """One request from a client."""

    action: Action
    """What to do."""
    tasks: tuple[str, ...] = ()
    """Which tasks (empty for ``shutdown``)."""
    by: str = "api"
    """Which client sent it: ``tui``, ``cli``, ``api``."""
    confirmed: bool = False
    """The user confirmed an action on a ``mode: observe`` task."""
    enabled: bool | None = None
    """For ``set_autorestart`` / ``set_watch``: the new value (None toggles)."""
    data: bytes = b""
    """For ``send_stdin``: the bytes to write."""
    always: bool = False
    """For ``approve``: open the gate for the rest of the session."""
    force: bool = False
    """For ``shutdown`` and ``stop``: kill at once instead of the graceful stop."""
    extra: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    """Reserved for forward-compatible options, as key/value pairs."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The engine's answer to a command."""

    ok: bool
    """Whether the command was accepted."""
    message: str = ""
    """Human-readable outcome or reason for refusal."""
    needs_confirmation: bool = False
    """Refused because the task is ``mode: observe`` and ``confirmed`` was not set."""
    unknown: tuple[str, ...] = ()
    """Refused because these names are not tasks (the CLI exits 2 for them)."""


class Controller(Protocol):
    """Where clients send commands."""

    async def execute(self, command: Command) -> CommandResult:
        """Carry out ``command`` (or refuse it with a reason)."""
        ...
