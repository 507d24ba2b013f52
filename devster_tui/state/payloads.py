"""Event payloads: one ``TypedDict`` per event type in :class:`~devster_tui.state.events.T`.

These are the contract between the engine, which writes events, and every reader (the
reducer, the headless printer, the TUI, a replay, a script reading the event log or the
bus).  :meth:`Store.dispatch <devster_tui.state.store.Store.dispatch>` has one
``typing.overload`` per event type that unpacks the type's payload into its keyword
arguments (PEP 692), so every existing call site ``store.dispatch(T.TASK_EXITED, name,
run=..., ...)`` is checked by mypy: a misspelt key, a missing key or a value of the wrong
type is a type error instead of a default the tolerant reducer quietly substitutes.
``T``'s constants are ``Final`` strings, which mypy treats as their literal values, so the
overload for ``"task.exited"`` is the one picked.

Why ``TypedDict`` and overloads rather than a frozen dataclass per event with ``emit``
helpers: the payload *is* a JSON object (``Event.data``), in memory, on disk and on the
wire, and a ``TypedDict`` describes exactly that with no conversion; the ~40 call sites
stay as they are, and the runtime cost is nil (the overloads and these classes are only
read by mypy and by the documentation generator; ``store.py`` imports this module only
when type checking).  The readers stay tolerant: a log written by an older devster may
lack a key marked required here, and :mod:`devster_tui.state.reducer` defaults it.

One hole: mypy does not look inside a plain ``dict`` unpacked into the call
(``**{"rset": True}`` passes), so a call that sends a key only sometimes builds its payload
as a variable of the payload's type (``data: TaskExited = {...}; data["why"] = ...;
store.dispatch(T.TASK_EXITED, name, **data)``), where mypy checks every key; a test checks
that the package's ``dispatch`` calls unpack nothing else.

A key that is not always sent is ``NotRequired``.  Each key has a docstring on the line
after it; :func:`markdown` turns these classes, their docstrings and the ``task``
argument of each overload into ``docs/events.md``
(``python -m devster_tui.state.payloads --markdown``), and a test regenerates the page and
compares it with the committed one, so the page cannot drift from the code.  (The
generator imports ``ast`` and ``inspect`` only when it runs, so importing this module for
its types costs next to nothing.)
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, NotRequired, TypedDict, get_overloads

from devster_tui.state.events import T

# -- engine --------------------------------------------------------------------------------


class EngineStarted(TypedDict):
    """An engine run begins; the state starts afresh with these tasks (in definition order)."""

    project: str
    """The project's name (its directory's name when the file names none)."""
    config_file: str
    """Path of the project file."""
    pid: int
    """The engine's process id."""
    tasks: list[str]
    """Every task's name, in definition order."""
    version: str
    """devster's version."""


class EngineStopping(TypedDict):
    """The engine begins its shutdown: tasks stop in reverse dependency order."""

    reason: str
    """``signal`` (Ctrl-C, SIGTERM, SIGHUP), ``request`` (a client's ``shutdown``),
    ``finished`` (``--exit-when-done``, ``devster run``) or ``failure``
    (``--exit-on-failure``)."""
    force: bool
    """True: processes get SIGKILL at once."""


class EngineStopped(TypedDict):
    """The engine has stopped every task; the last event of a run."""

    exit_code: int
    """The engine's exit code."""


# -- a task's definition ---------------------------------------------------------------------


class TaskDefined(TypedDict):
    """A task as configured, sent once per task right after ``engine.started``."""

    kind: str
    """``service`` or ``job``."""
    depends_on: dict[str, str]
    """Dependency name -> condition (``started``, ``healthy``, ``log_ready``,
    ``completed`` or ``succeeded``)."""
    triggers: list[str]
    """Names of the observers that trigger it."""
    mode: str
    """``normal``, or ``observe`` (read-only: stop, restart and stdin need confirmation)."""
    has_health: bool
    """It has a health check."""
    ports: dict[str, int]
    """Port name -> number."""
    host: str | None
    """The host a fanned-out instance (``task@host``) runs on, None otherwise."""
    autostart: bool
    """It starts with ``devster up`` when no task is named."""
    restart_policy: str
    """``no``, ``on-failure`` or ``always``."""
    stdin: list[str]
    """Tasks and files its stdin is fed from; ``console`` for console stdin."""
    environment: str | None
    """The environment it uses, if any."""
    config: dict[str, Any]
    """The resolved task config (what differs from the defaults, keys as in the project
    file), secret values masked."""


# -- a task's lifecycle --------------------------------------------------------------------


class TaskWaiting(TypedDict):
    """The task waits for dependencies to reach their conditions (or a link to return)."""

    reason: str
    """Human text, e.g. ``waiting for db (healthy)``."""
    on: list[str]
    """The dependencies it waits for (empty while a remote link reconnects)."""


class TaskBlocked(TypedDict):
    """A dependency condition can no longer be met (it failed or timed out)."""

    reason: str
    """Human text, e.g. ``dependency db not healthy after 30s``."""
    on: list[str]
    """The dependency that blocks it."""


class TaskStarting(TypedDict):
    """A run begins: dependencies are met and the task is being prepared and spawned."""

    run: int
    """1-based count of the task's starts."""
    reason: str
    """``start``, ``restart``, ``trigger``, or a dependency's reason; anything but
    ``start`` after an earlier run counts as a restart."""
    reset: NotRequired[bool]
    """Present (True) when a command reset the restart budget: the restart count starts
    again from zero."""


class TaskSpawned(TypedDict):
    """The process is running."""

    pid: int | None
    """Its local process id, None for a remote process."""
    pgid: int | None
    """Its local process group id, None for a remote process."""
    run: int
    """The run it belongs to."""
    argv_summary: str
    """The command line, shortened to 200 characters; never secret values."""


class TaskSpawnFailed(TypedDict):
    """The process could not be started; the task is failed."""

    error: str
    """Why, e.g. ``not found: foo``."""
    errno: int | None
    """The OS error number, if any."""


class TaskLogReady(TypedDict):
    """An output line matched the task's ``ready`` pattern."""

    line: str
    """The matching line (truncated)."""


class TaskHealth(TypedDict):
    """A health or liveness check result."""

    healthy: bool
    """The check passed."""
    probe: str
    """``health`` (drives the status) or ``liveness`` (a failure restarts the task)."""
    detail: str
    """Human text: what was checked and what came back."""
    failures: int
    """Consecutive failures so far."""


class TaskStopping(TypedDict):
    """Devster is stopping the task's process."""

    reason: str
    """``user``, ``shutdown``, ``dependency``, ``restart``, ``timeout`` or ``liveness``."""
    signal: str
    """How: the stop signal's name, ``command`` (a stop command) or ``SIGKILL``."""
    detail: NotRequired[str]
    """With reason ``restart``: ``restarting`` or ``restarting: WHY``; shown instead of the
    reason."""


class TaskExited(TypedDict):
    """The task's process ended, with the engine's decision about what follows."""

    run: int
    """The run that ended."""
    code: int | None
    """The exit code, None when a signal ended it."""
    signal: str | None
    """The signal's name when a signal ended it."""
    success: bool
    """The exit counts as success: code 0 or one of ``success_exit_codes``; never after a
    signal, a job's timeout or a failed liveness check."""
    duration: float
    """Seconds the process ran."""
    stopped: bool
    """The exit followed a stop request."""
    next: str
    """What follows: ``start``, ``backoff``, ``stopped``, ``succeeded``, ``exited`` or
    ``failed`` (the exit table of lifecycle.md); readers go straight to that status."""
    last_lines: list[str]
    """The run's last output lines."""
    why: NotRequired[str]
    """Why the executor saw it end, when it knows more than the code (``container
    removed``, ``disconnected``)."""


class TaskBackoff(TypedDict):
    """The task waits before its next automatic restart."""

    delay: float
    """Seconds until the restart."""
    attempt: int
    """The restart attempt it leads to (1-based)."""


class TaskFailed(TypedDict):
    """The task failed for good (restart limit, a job's failure, a start-up error)."""

    reason: str
    """Human text."""
    last_exit: str | None
    """``exit N`` or ``signal NAME`` of the last exit, None when it never exited."""
    last_lines: list[str]
    """The last output lines."""


class TaskSucceeded(TypedDict):
    """A job ended with a success code."""

    run: int
    """The run that succeeded."""
    duration: float
    """Seconds it ran."""


class TaskStopped(TypedDict):
    """Terminal state after an explicit stop; never restarted automatically."""

    reason: str
    """``user``, ``shutdown``, ``dependency``, ..., as in ``task.stopping``."""
    was_running: NotRequired[bool]
    """False when a stop command found the task idle (its triggers are switched off)."""


class TaskAlarm(TypedDict):
    """An alarm about the task went on or off."""

    alarm: str
    """``crash_loop`` or ``stuck_starting``."""
    active: bool
    """On (True) or off."""
    detail: str
    """Human text (empty when it goes off)."""


# -- triggers, gates and toggles -------------------------------------------------------------


class TaskPending(TypedDict):
    """A trigger fired but the task waits: manual trigger mode, or a run in progress
    queued one follow-up."""

    trigger: str
    """The observer that fired."""
    detail: str
    """Human text."""


class TaskGate(TypedDict):
    """A manual gate waits for approval, or was approved."""

    observer: str
    """The observer whose gate it is."""
    prompt: str
    """The question shown to the user."""
    waiting: bool
    """True: waiting for approval; False: approved."""


class TaskTriggered(TypedDict):
    """A trigger (an observer, or the user) set the task off."""

    trigger: str
    """The observer's name, or ``user``."""
    detail: str
    """What fired (e.g. the changed paths)."""


class TaskAutorestart(TypedDict):
    """The user toggled auto-restart."""

    enabled: bool
    """Auto-restart is now on."""


class TaskWatch(TypedDict):
    """The user toggled file watching for the task."""

    enabled: bool
    """File watching is now on."""


# -- pipes, links and processes ----------------------------------------------------------------


class TaskOutputDropped(TypedDict):
    """A pipe with backpressure ``drop`` discarded lines its consumer could not take."""

    consumer: str
    """The task whose stdin the lines were for."""
    lines: int
    """How many lines were dropped since the last report."""
    sources: list[str]
    """The pipe's sources."""
    policy: str
    """The pipe's backpressure (``drop``)."""


class TaskLink(TypedDict):
    """A remote task's link dropped (it reconnects with backoff) or came back."""

    state: str
    """``disconnected`` or ``connected``."""
    detail: str
    """Human text."""


class TaskKilled(TypedDict):
    """Devster sent SIGKILL to a process, or ended one that had escaped its task."""

    pid: int
    """The process."""
    name: str
    """Its command name."""
    signal: str
    """The signal's name (SIGKILL, or the stop signal for an escapee)."""
    why: str
    """``escaped`` (it had left the task's process group, e.g. with setsid), ``stop
    timeout`` (still running when the stop's grace ran out), ``killed`` (a stop with
    SIGKILL at once) or ``orphan`` (left by an earlier devster)."""
    process: str
    """Which of the task's processes: ``task``, ``health``, ``liveness`` or ``stop``."""


class OrphanKilled(TypedDict):
    """A process group left by an earlier devster (killed with it) was ended at start."""

    pid: int
    """The leftover process."""
    pgid: int
    """Its process group."""


# -- clients ------------------------------------------------------------------------------------


class ClientCommand(TypedDict):
    """A client's command, recorded for the timeline (its effects are their own events)."""

    action: str
    """``start``, ``stop``, ``restart``, ``trigger``, ``approve``, ``set_autorestart``,
    ``set_watch``, ``send_stdin`` or ``shutdown``."""
    by: str
    """Who sent it: ``tui``, ``cli`` or ``api``."""
    confirmed: bool
    """The user confirmed it."""


class EngineWarning(TypedDict):
    """Something the user should know (e.g. host key checking is off)."""

    message: str
    """Human text."""


PAYLOADS: Final[Mapping[str, type[Any]]] = MappingProxyType(
    {
        T.ENGINE_STARTED: EngineStarted,
        T.ENGINE_STOPPING: EngineStopping,
        T.ENGINE_STOPPED: EngineStopped,
        T.TASK_DEFINED: TaskDefined,
        T.TASK_WAITING: TaskWaiting,
        T.TASK_BLOCKED: TaskBlocked,
        T.TASK_STARTING: TaskStarting,
        T.TASK_SPAWNED: TaskSpawned,
        T.TASK_SPAWN_FAILED: TaskSpawnFailed,
        T.TASK_LOG_READY: TaskLogReady,
        T.TASK_HEALTH: TaskHealth,
        T.TASK_STOPPING: TaskStopping,
        T.TASK_EXITED: TaskExited,
        T.TASK_BACKOFF: TaskBackoff,
        T.TASK_FAILED: TaskFailed,
        T.TASK_SUCCEEDED: TaskSucceeded,
        T.TASK_STOPPED: TaskStopped,
        T.TASK_ALARM: TaskAlarm,
        T.TASK_PENDING: TaskPending,
        T.TASK_GATE: TaskGate,
        T.TASK_TRIGGERED: TaskTriggered,
        T.TASK_AUTORESTART: TaskAutorestart,
        T.TASK_WATCH: TaskWatch,
        T.TASK_OUTPUT_DROPPED: TaskOutputDropped,
        T.TASK_LINK: TaskLink,
        T.TASK_KILLED: TaskKilled,
        T.ORPHAN_KILLED: OrphanKilled,
        T.COMMAND: ClientCommand,
        T.WARNING: EngineWarning,
    }
)
"""Event type -> its payload type, in the order of ``docs/events.md``."""


# -- docs/events.md ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Key:
    """One documented key of a payload (or field of the envelope)."""

    name: str
    """The key."""
    type: str
    """Its annotation as written, without ``NotRequired``."""
    required: bool
    """Always present in what the engine sends."""
    doc: str
    """Its docstring, on one line."""


def documented_keys(source: str, class_name: str) -> list[Key]:
    """The annotated attributes of class ``class_name`` in ``source``, with their docstrings.

    Args:
        source: Python source text.
        class_name: A class defined at the top level of ``source``.

    Raises:
        LookupError: when ``source`` defines no such class.
    """
    import ast

    tree = ast.parse(source)
    node = next(
        (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name), None
    )
    if node is None:
        raise LookupError(class_name)
    keys: list[Key] = []
    body = node.body
    for index, item in enumerate(body):
        if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
            continue
        annotation, required = item.annotation, True
        if (
            isinstance(annotation, ast.Subscript)
            and isinstance(annotation.value, ast.Name)
            and annotation.value.id == "NotRequired"
        ):
            annotation, required = annotation.slice, False
        after = body[index + 1] if index + 1 < len(body) else None
        doc = ""
        if (
            isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            doc = " ".join(after.value.value.split())
        keys.append(Key(item.target.id, ast.unparse(annotation), required, doc))
    return keys


def dispatch_overloads() -> dict[str, tuple[str, str]]:
    """Event type -> (the ``task`` annotation, the payload's name) of each ``Store.dispatch``
    overload, read from the overloads themselves."""
    import ast

    from devster_tui.state.store import Store

    found: dict[str, tuple[str, str]] = {}
    for fn in get_overloads(Store.dispatch):
        hints = fn.__annotations__
        kind = ast.parse(hints["type"], mode="eval").body
        data = ast.parse(hints["data"], mode="eval").body
        if not (
            isinstance(kind, ast.Subscript)
            and isinstance(kind.slice, ast.Constant)
            and isinstance(data, ast.Subscript)
            and isinstance(data.slice, ast.Name)
        ):
            raise ValueError(f"unexpected Store.dispatch overload: {hints}")
        found[str(kind.slice.value)] = (hints["task"], data.slice.id)
    return found


_TASK_ARGUMENT: Final = {"str": "the task", "str | None": "a task or none", "None": "none"}


def _cell(text: str) -> str:
    """Docstring text as a Markdown table cell: RST roles and literals become code spans."""
    import re

    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text).replace("``", "`")
    return text.replace("|", "\\|")


def _anchor(event_type: str) -> str:
    return "".join(c for c in event_type if c.isalnum() or c in "_-")


def _summary(cls: type[Any]) -> str:
    return " ".join((cls.__doc__ or "").split())


def _envelope() -> list[str]:
    import inspect

    from devster_tui.state import events

    lines = ["| field | type | meaning |", "|---|---|---|"]
    for key in documented_keys(inspect.getsource(events), "Event"):
        lines.append(f"| `{key.name}` | `{_cell(key.type)}` | {_cell(key.doc)} |")
    return lines


def markdown() -> str:
    """The text of ``docs/events.md``: every event type, its keys, their types, whether they
    are always sent, and what they mean, from these classes and ``Store.dispatch``'s
    overloads."""
    import inspect

    source = inspect.getsource(sys.modules[__name__])
    overloads = dispatch_overloads()
    out = [
        "# Events",
        "",
        "<!-- Generated from devster_tui/state/payloads.py by",
        "     `python -m devster_tui.state.payloads --markdown > docs/events.md`; do not edit.",
        "     tests/unit/test_event_payloads.py fails when this page and the code differ. -->",
        "",
        "Everything that happens in an engine is an event: the engine records it in the event",
        "log (`.devster/events/events-NNNNNN.jsonl`, one JSON object a line), serves it on",
        "`GET /v1/events` ([api.md](api.md)), publishes it on the event bus, and every client",
        "rebuilds its state from the stream with the same reducer (`devster replay` does it",
        "from a log). Output lines are not events. Each event is an envelope:",
        "",
        *_envelope(),
        "",
        "`data` is the payload of the event's type, described below. *Always* keys are in",
        "every event the engine sends now; *optional* ones only when they apply. Readers",
        "must not assume more: a log written by an older devster may lack keys (an older",
        "`task.exited` has no `next`, an older `task.starting` no `reset`) and a newer one",
        "may add keys or event types; devster's reducer defaults what is missing and",
        "ignores what it does not know, so `devster replay` reads old logs. In the engine,",
        "`Store.dispatch` takes these keys as keyword arguments and mypy checks them.",
        "",
        "| event | task | what it means |",
        "|---|---|---|",
    ]
    for event_type, cls in PAYLOADS.items():
        task = _TASK_ARGUMENT[overloads[event_type][0]]
        out.append(
            f"| [`{event_type}`](#{_anchor(event_type)}) | {task} | {_cell(_summary(cls))} |"
        )
    for event_type, cls in PAYLOADS.items():
        out += ["", f"## `{event_type}`", "", _cell(_summary(cls)), ""]
        out.append(f"Task: {_TASK_ARGUMENT[overloads[event_type][0]]}. Payload: `{cls.__name__}`.")
        out += ["", "| key | type | sent | meaning |", "|---|---|---|---|"]
        for key in documented_keys(source, cls.__name__):
            sent = "always" if key.required else "optional"
            out.append(f"| `{key.name}` | `{_cell(key.type)}` | {sent} | {_cell(key.doc)} |")
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m devster_tui.state.payloads --markdown``: write docs/events.md to stdout.

    Returns:
        The exit code.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["--markdown"]:
        sys.stderr.write("usage: python -m devster_tui.state.payloads --markdown\n")
        return 64
    sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
