"""Engine scenarios over the fake executor: one row says what happens and what must follow.

A :class:`Scenario` is a project file, a script per task for
:class:`~devster_tui.executors.fake.FakeExecutor`, commands at given times and the events
expected in order (other events may come between them).  :func:`play` runs a real
:class:`~devster_tui.engine.supervisor.Engine` on virtual time
(:func:`~devster_tui.executors.fake.run_virtual`, :class:`~devster_tui.executors.fake.LoopClock`),
so a 10 s backoff costs no real time and every event time is exact; :func:`check` plays a
row and raises ``AssertionError`` with the recorded timeline when it does not hold.
Times in a row are seconds after ``engine.started``.
"""

from __future__ import annotations

import asyncio
import random
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devster_tui.config.loader import load_project
from devster_tui.engine.supervisor import Engine
from devster_tui.executors.fake import Call, FakeExecutor, LoopClock, Script, run_virtual
from devster_tui.state.commands import Command, CommandResult
from devster_tui.state.events import Event, T
from devster_tui.state.model import EngineState, Status

SLACK = 1e-6
"""Tolerance of time windows (virtual time is exact but sums of floats are not)."""

_NOISE = frozenset({"last_lines", "argv_summary", "config", "config_file", "pgid", "version"})
"""Payload keys left out when a timeline is printed."""


@dataclass(frozen=True, slots=True)
class Contains:
    """An expected payload value: the actual one, as text, contains ``text``."""

    text: str
    """The expected part."""


@dataclass(frozen=True, slots=True)
class Expect:
    """One expected event: its type, its task and a subset of its payload."""

    type: str
    """A :class:`~devster_tui.state.events.T` name."""
    task: str | None
    """The task it concerns (None for engine events)."""
    data: Mapping[str, object] = field(default_factory=dict)
    """Keys that must be present with these values (or a :class:`Contains`)."""
    at: tuple[float, float] | None = None
    """When it must happen, ``(earliest, latest)`` seconds after ``engine.started``."""

    def matches(self, event: Event, t0: float) -> bool:
        """Whether ``event`` is this one (``t0``: the mono time of ``engine.started``)."""
        if event.type != self.type or event.task != self.task:
            return False
        for key, want in self.data.items():
            if key not in event.data:
                return False
            got = event.data[key]
            if isinstance(want, Contains):
                if want.text not in str(got):
                    return False
            elif got != want:
                return False
        if self.at is not None:
            earliest, latest = self.at
            if not earliest - SLACK <= event.mono - t0 <= latest + SLACK:
                return False
        return True

    def __str__(self) -> str:
        when = "" if self.at is None else f" at {self.at[0]:g}..{self.at[1]:g}s"
        return f"{self.type} {self.task} {dict(self.data)}{when}"


def ev(
    type: str, task: str | None, *, at: float | tuple[float, float] | None = None, **data: object
) -> Expect:
    """An :class:`Expect`; ``at`` is a time (exact) or an ``(earliest, latest)`` window."""
    window = (at, at) if isinstance(at, int | float) else at
    return Expect(type, task, data, window)


@dataclass(frozen=True, slots=True)
class At:
    """A command sent ``at`` seconds after ``engine.started`` (without waiting for others)."""

    at: float
    """When."""
    command: Command
    """What (``Command("stop", ("api",))``)."""


@dataclass(frozen=True)
class Scenario:
    """One row of a scenario table."""

    name: str
    """The test id: what happens."""
    yaml: str
    """The project file (dedented)."""
    scripts: Mapping[str, Script]
    """The fake executor's script per task name."""
    expected: Sequence[Expect]
    """Events that must happen, in this order (others may come between)."""
    commands: Sequence[At] = ()
    """Commands sent during the scenario (each must be accepted)."""
    never: Sequence[Expect] = ()
    """Events that must not happen at all before ``until``."""
    final: Mapping[str, Status] = field(default_factory=dict)
    """Statuses at ``until``."""
    signals: Mapping[str, Sequence[int]] = field(default_factory=dict)
    """Exactly the signals each task's processes received before ``until``."""
    until: float = 10.0
    """When the scenario ends (then the engine shuts down, killing what is left)."""
    bug: str | None = None
    """Why the current engine fails it (``issue 12 item N: ...``): the row is a strict xfail."""


@dataclass
class Played:
    """What a played scenario recorded."""

    events: list[Event]
    """Every event up to ``until`` (the shutdown's are left out)."""
    t0: float
    """Mono time of ``engine.started``."""
    state: EngineState
    """The state at ``until``."""
    calls: list[Call]
    """The executor's records up to ``until``."""
    all_calls: list[Call]
    """The executor's records including the shutdown."""
    results: list[tuple[At, CommandResult]]
    """Each command's answer."""
    leftover: int
    """Fake processes still alive after the shutdown."""


def first_mismatch(events: Sequence[Event], expected: Sequence[Expect], t0: float) -> str | None:
    """Why ``expected`` is not an ordered subsequence of ``events``, or None when it is."""
    pos = 0
    for number, want in enumerate(expected, 1):
        for index in range(pos, len(events)):
            if want.matches(events[index], t0):
                pos = index + 1
                break
        else:
            return (
                f"expected event {number} of {len(expected)} ({want}) did not follow; "
                f"the events after the previous match:\n{timeline(events[pos:], t0)}"
            )
    return None


def forbidden(events: Sequence[Event], never: Sequence[Expect], t0: float) -> str | None:
    """Which forbidden event happened, or None."""
    for want in never:
        for event in events:
            if want.matches(event, t0):
                return f"forbidden event happened ({want}):\n{timeline([event], t0)}"
    return None


def overlapping(calls: Sequence[Call]) -> str | None:
    """A task with two live fake processes at once, or None."""
    live: dict[str, int] = {}
    for call in calls:
        if call.kind == "spawned":
            live[call.task] = live.get(call.task, 0) + 1
            if live[call.task] > 1:
                return f"two live instances of {call.task} at {call.at:g}"
        elif call.kind == "exit":
            live[call.task] -= 1
    return None


def timeline(events: Sequence[Event], t0: float) -> str:
    """Events as readable lines: time, type, task, payload without the bulky keys."""
    lines = []
    for e in events:
        data = {k: v for k, v in e.data.items() if k not in _NOISE}
        lines.append(f"  {e.mono - t0:8.3f}  {e.type:<18} {e.task or '-':<10} {data}")
    return "\n".join(lines) or "  (none)"


async def _play(row: Scenario, root: Path) -> Played:
    file = root / "devster.yaml"
    file.write_text(textwrap.dedent(row.yaml))
    executor = FakeExecutor(row.scripts)
    engine = Engine(
        load_project(file),
        clock=LoopClock(),
        executor=executor,
        state_dir=root / "state",
        rng=random.Random(12),
    )
    loop = asyncio.get_running_loop()
    results: list[tuple[At, CommandResult]] = []

    async def send(step: At, t0: float) -> None:
        await asyncio.sleep(max(0.0, t0 + step.at - loop.time()))
        results.append((step, await engine.execute(step.command)))

    await engine.start()
    try:
        t0 = next(e.mono for e in engine.store.events_since(0) if e.type == T.ENGINE_STARTED)
        senders = [asyncio.create_task(send(step, t0)) for step in row.commands]
        await asyncio.sleep(max(0.0, t0 + row.until - loop.time()))
        state, last, calls = engine.store.state, engine.store.seq, list(executor.calls)
        await asyncio.gather(*senders)
    finally:
        await engine.shutdown(force=True)
    events = [e for e in engine.store.events_since(0) if e.seq <= last]
    return Played(events, t0, state, calls, list(executor.calls), results, len(executor.live))


def play(row: Scenario, root: Path, limit: float = 600.0) -> Played:
    """Run ``row`` in ``root`` on virtual time (``limit``: virtual seconds before giving up)."""

    async def bounded() -> Played:
        async with asyncio.timeout(limit):
            return await _play(row, root)

    return run_virtual(bounded())


def check(row: Scenario, root: Path) -> Played:
    """Play ``row`` and check every expectation of it.

    Raises:
        AssertionError: with the recorded timeline, on the first expectation that fails.
    """
    played = play(row, root)
    events, t0 = played.events, played.t0
    problems: list[str | None] = [
        first_mismatch(events, row.expected, t0),
        forbidden(events, row.never, t0),
        overlapping(played.all_calls),
    ]
    refused = [
        f"{step.command.action} {step.command.tasks}: {r.message}"
        for step, r in played.results
        if not r.ok
    ]
    if refused:
        problems.append(f"commands refused: {refused}")
    if played.leftover:
        problems.append(f"{played.leftover} fake processes outlived the shutdown")
    for name, status in row.final.items():
        got = played.state.tasks[name].status if name in played.state.tasks else None
        if got is not status:
            problems.append(f"{name} is {got} at {row.until:g}s, expected {status}")
    for name, signals in row.signals.items():
        got_signals = [c.signal for c in played.calls if c.kind == "signal" and c.task == name]
        if got_signals != list(signals):
            problems.append(f"{name} received signals {got_signals}, expected {list(signals)}")
    found = [p for p in problems if p is not None]
    if found:
        raise AssertionError("\n".join(found) + "\nwhole timeline:\n" + timeline(events, t0))
    return played
