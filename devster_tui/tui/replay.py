"""``devster replay LOG --tui``: a recorded event log in the cockpit, stepped and scrubbed in time.

Why a store of its own: the cockpit only reads ``store.state`` (by identity) and
``events_since``, so a :class:`ReplayStore` that moves a position through the recorded
events and folds them with the engine's reducer shows exactly what the live cockpit showed
at that moment.  States are cached every :data:`CHECKPOINT_EVERY` events, so a jump
anywhere in a 100 000-event log reduces at most that many events.  Output lines are not
in the event log: the log pane shows the ``.devster/logs`` files found beside it, whole and
not positioned in time.  Nothing can be controlled: :class:`ReplayController` refuses every
command with the reason.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from devster_tui.state.commands import Command, CommandResult
from devster_tui.state.events import Event, T
from devster_tui.state.model import EngineState, TaskState
from devster_tui.state.output import OutputStore, log_file_name
from devster_tui.state.reducer import reduce
from devster_tui.tui.app import CockpitApp
from devster_tui.tui.bridge import OutputView

CHECKPOINT_EVERY: Final = 1000
"""Events between two cached states."""
DEFAULT_JUMP: Final = 100
"""Events moved by ``<`` / ``>``."""
DEFAULT_SECONDS: Final = 5.0
"""Seconds moved by ``[`` / ``]``."""
TAIL_BYTES: Final = 4 * 2**20
"""Newest bytes of each task's stdout and stderr log files loaded into the log pane."""
REFUSAL: Final = "replay is read-only: this is a recording, nothing runs (use devster up)"
"""What every command is answered with."""


class ReplayStore:
    """Recorded events and a position in them; ``state`` is the reducer's state there.

    Args:
        events: The events in order (from :func:`~devster_tui.state.eventlog.read_events`).
        every: Cache the state after every ``every`` events.
    """

    def __init__(self, events: Sequence[Event], *, every: int = CHECKPOINT_EVERY) -> None:
        self.events: Sequence[Event] = events
        """The recorded events."""
        self.every = max(1, every)
        """Events between two cached states."""
        self._checkpoints: list[EngineState] = [EngineState()]
        self._position = 0
        self._state = EngineState()
        self.offsets: list[float] = _offsets(events)
        """Seconds from the first event, per event (never decreasing)."""
        self.reductions = 0
        """Events folded so far (to measure the checkpoints' effect)."""

    # ------------------------------------------------------------------ reading

    @property
    def state(self) -> EngineState:
        """The state after the first :attr:`position` events."""
        return self._state

    @property
    def position(self) -> int:
        """How many events are applied (0: none, ``total``: all)."""
        return self._position

    @property
    def total(self) -> int:
        """Number of events."""
        return len(self.events)

    @property
    def current(self) -> Event | None:
        """The last event applied (None at position 0)."""
        return self.events[self._position - 1] if self._position else None

    @property
    def offset(self) -> float:
        """Seconds from the first event to the current one (0 at position 0)."""
        return self.offsets[self._position - 1] if self._position else 0.0

    def now(self) -> float:
        """The engine's monotonic time at the current event (for uptimes)."""
        event = self.current
        if event is not None:
            return event.mono
        return self.events[0].mono if self.events else 0.0

    def events_since(self, seq: int) -> list[Event]:
        """Applied events with a sequence number above ``seq`` (the cockpit's detail view)."""
        return [e for e in self.events[: self._position] if e.seq > seq]

    # ------------------------------------------------------------------ moving

    def seek(self, position: int) -> EngineState:
        """Move to ``position`` (clamped to ``0..total``) and return the state there."""
        position = max(0, min(self.total, position))
        if position == self._position:
            return self._state
        block = position // self.every
        self._fill_checkpoints(block)
        if self._position <= position and self._position >= block * self.every:
            state, at = self._state, self._position  # forward within reach: keep going
        else:
            state, at = self._checkpoints[block], block * self.every
        self._state = self._fold(state, at, position)
        self._position = position
        return self._state

    def step(self, delta: int) -> EngineState:
        """Move ``delta`` events forward (negative: back)."""
        return self.seek(self._position + delta)

    def seek_time(self, offset: float) -> EngineState:
        """Move to the last event at or before ``offset`` seconds from the first event."""
        return self.seek(bisect_right(self.offsets, offset))

    def scrub(self, seconds: float) -> EngineState:
        """Move ``seconds`` in time from the current event (at least one event if any)."""
        if seconds == 0:
            return self._state
        target = bisect_right(self.offsets, self.offset + seconds)
        if seconds > 0 and target <= self._position:
            target = self._position + 1
        elif seconds < 0 and target >= self._position:
            target = self._position - 1
        return self.seek(target)

    def _fill_checkpoints(self, block: int) -> None:
        checkpoints = self._checkpoints
        while len(checkpoints) <= block:
            start = (len(checkpoints) - 1) * self.every
            checkpoints.append(self._fold(checkpoints[-1], start, start + self.every))

    def _fold(self, state: EngineState, start: int, stop: int) -> EngineState:
        events = self.events
        for index in range(start, stop):
            state = reduce(state, events[index])
        self.reductions += stop - start
        return state


def _offsets(events: Sequence[Event]) -> list[float]:
    """Seconds from the first event: monotonic time within an engine run, wall time
    between runs (each ``engine.started`` begins a new monotonic clock)."""
    offsets: list[float] = []
    if not events:
        return offsets
    first_wall = events[0].wall
    base = 0.0
    origin = events[0].mono
    last = 0.0
    for index, event in enumerate(events):
        if index and event.type == T.ENGINE_STARTED:
            base = max(last, event.wall - first_wall)
            origin = event.mono
        last = max(last, base + event.mono - origin)
        offsets.append(last)
    return offsets


class ReplayController:
    """A controller that refuses every command: a replay only shows what happened."""

    async def execute(self, command: Command) -> CommandResult:
        """Refuse ``command`` with :data:`REFUSAL`."""
        return CommandResult(False, REFUSAL)


# ---------------------------------------------------------------------- output


def logs_beside(log: Path) -> Path | None:
    """The ``logs`` directory next to an event log (``.devster/events`` -> ``.devster/logs``).

    Args:
        log: The event log directory or one of its segment files.
    """
    events_dir = log.parent if log.is_file() else log
    logs = events_dir.parent / "logs"
    return logs if logs.is_dir() else None


def _files(logs: Path, task: str, stream: str) -> list[Path]:
    """A stream's log files, oldest first (``.N`` .. ``.1``, then the current one)."""
    current = logs / log_file_name(task, stream)
    rotated: list[tuple[int, Path]] = []
    prefix = current.name + "."
    for entry in logs.glob(current.name + ".*"):
        suffix = entry.name[len(prefix) :]
        if suffix.isdigit():
            rotated.append((int(suffix), entry))
    files = [path for _, path in sorted(rotated, reverse=True)]
    return [*files, current] if current.is_file() else files


def _tail(files: Sequence[Path], limit: int) -> tuple[bytes, bool]:
    """The last ``limit`` bytes of the files' concatenation, from a line start; and
    whether anything was left out."""
    sizes = []
    for path in files:
        try:
            sizes.append(path.stat().st_size)
        except OSError:
            sizes.append(0)
    skip = max(0, sum(sizes) - limit)
    parts: list[bytes] = []
    for path, size in zip(files, sizes, strict=True):
        if skip >= size:
            skip -= size
            continue
        try:
            with path.open("rb") as handle:
                handle.seek(skip)
                parts.append(handle.read())
        except OSError:
            continue
        skip = 0
    data = b"".join(parts)
    cut = sum(sizes) > limit
    if cut:
        newline = data.find(b"\n")
        data = data[newline + 1 :] if newline >= 0 else b""
    return data, cut


def recorded_output(
    tasks: Iterable[str], logs: Path | None, *, tail_bytes: int = TAIL_BYTES
) -> OutputStore:
    """An in-memory output store holding the recorded log files of ``tasks``.

    The merged (``both``) view starts with a marker line saying where the lines come from
    and holds the stdout lines, then the stderr lines: the files do not record how the
    two streams interleaved, nor when each line was printed.

    Args:
        tasks: Task names.
        logs: The ``logs`` directory (None: there is no recorded output).
        tail_bytes: Newest bytes loaded per task and stream.
    """
    output = OutputStore(None)
    for task in tasks:
        if logs is None:
            output.mark(task, "no output recorded (no logs directory beside the event log)", 0)
            continue
        loaded = False
        streams: list[tuple[str, bytes, bool]] = []
        for stream in ("stdout", "stderr"):
            files = _files(logs, task, stream)
            if files:
                data, cut = _tail(files, tail_bytes)
                streams.append((stream, data, cut))
                loaded = loaded or bool(data)
        if not loaded:
            output.mark(task, f"no output recorded for {task} in {logs}", 0)
            continue
        output.mark(task, f"recorded output from {logs} (not positioned in time)", 0)
        for stream, data, cut in streams:
            if not data:
                continue
            if cut:
                output.mark(task, f"{stream}: older lines not loaded", 0)
            output.append(task, stream, data, 0)
            output.finish(task, stream)
    return output


def task_names(events: Iterable[Event]) -> list[str]:
    """Every task an event names, in first-seen order."""
    names: dict[str, None] = {}
    for event in events:
        if event.task is not None:
            names.setdefault(event.task, None)
    return list(names)


# ---------------------------------------------------------------------- the app


class ReplayBar(Static):
    """Where the replay is (event number, sequence, time, the event itself), then the keys."""

    DEFAULT_CSS = """
    ReplayBar {
        height: 2;
        background: $secondary-background;
        color: $foreground;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """


KEYS: Final = (
    "keys: ← → or , . one event · ⇧← ⇧→ or < > {jump} events · [ ] {seconds:g} s · "
    "B first · E last · read-only"
)
"""Key hints on the replay bar's second line."""


def event_summary(event: Event) -> str:
    """``task.spawned db pid=12 run=1`` (short values, one line)."""
    parts = [event.type]
    if event.task:
        parts.append(event.task)
    for key, value in event.data.items():
        if key in ("config", "last_lines", "argv_summary"):
            continue
        parts.append(f"{key}={_short(value)}")
    return " ".join(parts)


def _short(value: Any) -> str:
    if isinstance(value, Mapping):
        text = "{" + ",".join(f"{k}:{_short(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, list | tuple):
        text = "[" + ",".join(_short(v) for v in value) + "]"
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= 40 else text[:39] + "…"


def position_text(replay: ReplayStore) -> str:
    """``event 12/340 · seq 12 · +3.250s · 2026-11-23 17:45:49.123 · task.spawned db ...``."""
    event = replay.current
    if event is None:
        return f"replay · before the first event (0/{replay.total})"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.wall))
    millis = int((event.wall % 1) * 1000)
    return (
        f"replay · event {replay.position}/{replay.total} · seq {event.seq} · "
        f"+{replay.offset:.3f}s · {stamp}.{millis:03d} · {event_summary(event)}"
    )


class ReplayApp(CockpitApp):
    """The cockpit over a :class:`ReplayStore`: replay keys, a position bar, no control.

    Args:
        replay: The recorded events and the position.
        output: The recorded output (see :func:`recorded_output`).
        title: Window title.
        theme: Theme name.
        jump: Events moved by ``<`` / ``>``.
        seconds: Seconds moved by ``[`` / ``]``.
        theme_dirs: Folders to load themes from (default: the usual ones).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("right,full_stop", "step(1)", "Next event", show=False),
        Binding("left,comma", "step(-1)", "Previous event", show=False),
        Binding("shift+right,greater_than_sign", "jump(1)", "Forward N events", show=False),
        Binding("shift+left,less_than_sign", "jump(-1)", "Back N events", show=False),
        Binding("right_square_bracket", "scrub(1)", "Forward in time", show=False),
        Binding("left_square_bracket", "scrub(-1)", "Back in time", show=False),
        Binding("B", "seek_start", "First event", show=False),
        Binding("E", "seek_end", "Last event", show=False),
    ]

    def __init__(
        self,
        replay: ReplayStore,
        output: OutputView,
        *,
        title: str = "devster replay",
        theme: str | None = None,
        jump: int = DEFAULT_JUMP,
        seconds: float = DEFAULT_SECONDS,
        theme_dirs: Sequence[Path] | None = None,
    ) -> None:
        super().__init__(
            replay,
            output,
            ReplayController(),
            title=title,
            theme=theme,
            clock=replay.now,
            theme_dirs=theme_dirs,
        )
        self.replay = replay
        """The events and the position."""
        self.jump = max(1, jump)
        """Events per ``<`` / ``>``."""
        self.seconds = seconds if seconds > 0 else DEFAULT_SECONDS
        """Seconds per ``[`` / ``]``."""
        self.replay_bar = ReplayBar("", id="replay-bar")
        """Position, time and the current event."""

    def compose(self) -> ComposeResult:
        """The cockpit with the replay bar under the title."""
        yield self.title_bar
        yield self.replay_bar
        yield self.task_header
        yield self.tasks
        yield self.log_pane
        yield self.search_bar
        yield self.status_bar

    def on_mount(self) -> None:
        """Show where the replay is."""
        self._update_bar()

    def send(self, action: str, *, task: TaskState | None = None, **options: Any) -> bool:
        """Hand every action to the refusing controller (no confirmation first)."""
        if action != "shutdown":
            task = task or self.selected_task
        names = (task.name,) if task is not None else ()
        self.dispatch_command(Command(action, names, by="tui", **options))  # type: ignore[arg-type]
        return True

    def _update_bar(self) -> None:
        where = Text(position_text(self.replay), no_wrap=True, overflow="ellipsis", end="")
        hints = Text(KEYS.format(jump=self.jump, seconds=self.seconds), style="dim", end="")
        self.replay_bar.update(Text("\n", no_wrap=True, end="").join([where, hints]))

    def _moved(self) -> None:
        self._pump()
        self._update_bar()

    def action_step(self, delta: int) -> None:
        """Move ``delta`` events."""
        self.replay.step(delta)
        self._moved()

    def action_jump(self, direction: int) -> None:
        """Move :attr:`jump` events forward (1) or back (-1)."""
        self.replay.step(direction * self.jump)
        self._moved()

    def action_scrub(self, direction: int) -> None:
        """Move :attr:`seconds` forward (1) or back (-1) in time."""
        self.replay.scrub(direction * self.seconds)
        self._moved()

    def action_seek_start(self) -> None:
        """Go before the first event."""
        self.replay.seek(0)
        self._moved()

    def action_seek_end(self) -> None:
        """Go to the last event."""
        self.replay.seek(self.replay.total)
        self._moved()
