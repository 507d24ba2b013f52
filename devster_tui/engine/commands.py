"""The engine's commands: one handler per :data:`~devster_tui.state.commands.Action`.

Why a table: every command goes through the same checks first (task names known, at least
one named, ``mode: observe`` tasks confirmed, the engine not stopping) and the same record
(a ``command`` event per task, the restart budget reset where
:func:`~devster_tui.engine.policy.resets_restart_budget` says so); what differs is one
handler each.  The decisions (what a stop does to an idle task, what a trigger does) stay
pure functions of :mod:`~devster_tui.engine.policy`; a handler carries them out and words
the answer.  Handlers work through :class:`CommandTarget`, never the Engine itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from devster_tui.engine.gates import Gates
from devster_tui.engine.pipes import PipeManager
from devster_tui.engine.policy import StopReason, on_stop_command, resets_restart_budget
from devster_tui.engine.protocols import EngineCore
from devster_tui.errors import unknown_names
from devster_tui.state.commands import OBSERVE_GUARDED, Command, CommandResult
from devster_tui.state.events import T


class CommandTarget(EngineCore, Protocol):
    """What the command handlers use of the engine, beyond :class:`EngineCore`."""

    @property
    def gates(self) -> Gates:
        """The manual gates."""
        ...

    @property
    def pipes(self) -> PipeManager:
        """Stdin pipes and console stdin."""
        ...

    @property
    def observer_targets(self) -> Mapping[str, Sequence[str]]:
        """Observer name -> the tasks it triggers."""
        ...

    async def shutdown(self, force: bool = False, reason: str = "request") -> int:
        """Stop every task and close the engine; its exit code."""
        ...


Handler = Callable[[CommandTarget, Command], Awaitable[CommandResult]]
"""Carries out one validated command."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of the command table."""

    handler: Handler
    """What the action does."""
    per_task: bool = True
    """Whether the command names tasks (checked and recorded per task first)."""
    observers: bool = False
    """Whether observer names stand for the tasks they trigger (``devster trigger obs``)."""


async def execute(engine: CommandTarget, command: Command) -> CommandResult:
    """Carry out ``command`` through the table: checks, record, handler."""
    action = command.action
    entry = COMMANDS.get(action)
    if entry is not None and not entry.per_task:
        return await entry.handler(engine, command)
    if entry is not None and entry.observers:
        command = _observer_targets(engine, command)
    refusal = _refusal(engine, command)
    if refusal is not None:
        return refusal
    for name in command.tasks:
        engine.store.dispatch(
            T.COMMAND, name, action=action, by=command.by, confirmed=command.confirmed
        )
        if resets_restart_budget(action):
            engine.runner(name).reset_restart_budget()
    if entry is None:
        return CommandResult(False, f"{action}: not supported by this engine")
    return await entry.handler(engine, command)


def _refusal(engine: CommandTarget, command: Command) -> CommandResult | None:
    """Why a command that names tasks is refused, if it is."""
    action = command.action
    unknown = [n for n in command.tasks if n not in engine.runners]
    if unknown:
        message = unknown_names("unknown task", unknown, engine.runners, "tasks")
        return CommandResult(False, message, unknown=tuple(unknown))
    if not command.tasks:
        return CommandResult(False, f"{action}: name at least one task")
    if action in OBSERVE_GUARDED and not command.confirmed:
        observed = [n for n in command.tasks if engine.tasks[n].mode == "observe"]
        if observed:
            return CommandResult(
                False,
                f"{', '.join(observed)} is read-only (mode: observe); confirm to {action}",
                needs_confirmation=True,
            )
    if engine.stopping:
        return CommandResult(False, "the engine is stopping")
    return None


def _observer_targets(engine: CommandTarget, command: Command) -> Command:
    """Replace observer names (``devster trigger go-integration``) by their tasks."""
    targets = engine.observer_targets
    names: list[str] = []
    for name in command.tasks:
        if name not in engine.runners and name in targets:
            names.extend(targets[name])
        else:
            names.append(name)
    return dataclasses.replace(command, tasks=tuple(dict.fromkeys(names)))


# ---------------------------------------------------------------------- handlers


async def _shutdown(engine: CommandTarget, command: Command) -> CommandResult:
    engine.store.dispatch(
        T.COMMAND, action=command.action, by=command.by, confirmed=command.confirmed
    )
    await engine.shutdown(command.force, "request")
    return CommandResult(True, "stopped")


async def _start(engine: CommandTarget, command: Command) -> CommandResult:
    started = engine.start_with_dependencies(command.tasks)
    return CommandResult(True, f"started {', '.join(started)}" if started else "running")


async def _stop(engine: CommandTarget, command: Command) -> CommandResult:
    """A user's stop: running tasks stop, idle ones get their triggers switched off."""
    stopping, disarmed = [], []
    for name in command.tasks:
        if on_stop_command(engine.runner(name).active) == "stop":
            stopping.append(name)
        else:
            disarmed.append(name)
            engine.store.dispatch(T.TASK_STOPPED, name, reason="user", was_running=False)
    await asyncio.gather(
        *(engine.runner(n).stop(StopReason.USER, force=command.force) for n in stopping)
    )
    said = [f"stopped {', '.join(stopping)}"] if stopping else []
    if disarmed:
        verb = "was" if len(disarmed) == 1 else "were"
        said.append(f"{', '.join(disarmed)} {verb} not running; triggers off")
    return CommandResult(True, "; ".join(said))


async def _approve(engine: CommandTarget, command: Command) -> CommandResult:
    """Open the manual gates of ``command.tasks`` (once, or for the session)."""
    gates = engine.gates
    ungated = [n for n in command.tasks if not gates.gated(n)]
    if ungated:
        return CommandResult(False, f"{', '.join(ungated)}: no manual gate to approve")
    for name in command.tasks:
        released = gates.approve(name, command.always)
        detail = "approved for the session" if command.always else "approved"
        engine.store.dispatch(
            T.TASK_TRIGGERED, name, trigger=gates.observer(name) or "user", detail=detail
        )
        if released:
            continue
        runner = engine.runner(name)
        if runner.live:
            if engine.tasks[name].kind == "job":
                runner.follow_up = "trigger"
            else:
                await runner.restart("trigger")
        elif not runner.active:
            engine.start_with_dependencies([name], "trigger")
    return CommandResult(True, f"approved {', '.join(command.tasks)}")


async def _set_watch(engine: CommandTarget, command: Command) -> CommandResult:
    _toggle(engine, command, "watching", T.TASK_WATCH)
    return CommandResult(True, "file watching updated")


async def _set_autorestart(engine: CommandTarget, command: Command) -> CommandResult:
    _toggle(engine, command, "autorestart", T.TASK_AUTORESTART)
    return CommandResult(True, "auto-restart updated")


def _toggle(
    engine: CommandTarget,
    command: Command,
    flag: Literal["watching", "autorestart"],
    event: Literal["task.watch", "task.autorestart"],
) -> None:
    """Set a per-task switch: to ``command.enabled``, or flipped when that is None."""
    for name in command.tasks:
        current = bool(getattr(engine.store.state.tasks[name], flag))
        enabled = (not current) if command.enabled is None else command.enabled
        engine.store.dispatch(event, name, enabled=enabled)


async def _send_stdin(engine: CommandTarget, command: Command) -> CommandResult:
    for name in command.tasks:
        refusal = await engine.pipes.send_console(name, command.data)
        if refusal is not None:
            return CommandResult(False, refusal)
    return CommandResult(True, f"sent {len(command.data)} bytes")


async def _restart(engine: CommandTarget, command: Command) -> CommandResult:
    for name in command.tasks:
        runner = engine.runner(name)
        if not runner.active:
            engine.start_with_dependencies([name], "restart")
        else:
            await runner.restart("restart")
    return CommandResult(True, f"restarted {', '.join(command.tasks)}")


async def _trigger(engine: CommandTarget, command: Command) -> CommandResult:
    gates = engine.gates
    for name in command.tasks:
        engine.store.dispatch(T.TASK_TRIGGERED, name, trigger="user", detail="")
        if gates.gated(name):
            gates.approve(name)  # triggering a gated task by name approves its gate once
    for name in command.tasks:
        runner = engine.runner(name)
        if gates.gated(name) and runner.active and not runner.live:
            continue  # released at the gate, or the approval waits for the deps
        if not runner.active:
            engine.start_with_dependencies([name], "trigger")
        else:
            await runner.restart("trigger")
    return CommandResult(True, f"triggered {', '.join(command.tasks)}")


COMMANDS: Mapping[str, Entry] = {
    "start": Entry(_start),
    "stop": Entry(_stop),
    "restart": Entry(_restart),
    "trigger": Entry(_trigger, observers=True),
    "approve": Entry(_approve, observers=True),
    "set_autorestart": Entry(_set_autorestart),
    "set_watch": Entry(_set_watch),
    "send_stdin": Entry(_send_stdin),
    "shutdown": Entry(_shutdown, per_task=False),
}
"""Action -> its row; an action missing here is answered "not supported"."""
