"""The task table: one row per task, flat or as a dependency tree, repainted row by row."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from devster_tui.state.model import LIVE_STATUSES, EngineState, Status, TaskState
from devster_tui.state.selectors import format_duration
from devster_tui.tui.bridge import Clock, tree_order
from devster_tui.tui.groups import Groups, group_state, host_groups
from devster_tui.tui.themes import STATUS_GLYPHS, resolve_color, status_styles


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the table."""

    key: str
    """Which field it shows."""
    title: str
    """Header text."""
    width: int
    """Cells."""


# (key, title, width), most important first: columns are dropped from the end to fit.
_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("glyph", "", 1),
    ("name", "TASK", 0),
    ("status", "STATUS", 9),
    ("flags", "FLAGS", 11),
    ("exit", "EXIT", 7),
    ("restarts", "↻", 3),
    ("uptime", "UP", 6),
    ("health", "HLTH", 4),
    ("kind", "KIND", 4),
    ("ports", "PORTS", 14),
)
NAME_MIN = 10
"""Narrowest name column."""
NAME_MAX = 28
"""Widest name column."""


def layout_columns(width: int, name_width: int) -> list[Column]:
    """Columns that fit in ``width`` cells (one space between columns).

    The glyph and the name always show; the other columns are added in order of
    importance while they fit, and spare cells widen the name up to what it needs.

    Args:
        width: Available cells.
        name_width: Width the longest task name (with its tree guides) needs.
    """
    used = 1 + 1 + NAME_MIN
    keep: set[str] = {"glyph", "name"}
    for key, _, w in _COLUMNS[2:]:
        if used + 1 + w > width:
            break
        keep.add(key)
        used += 1 + w
    wanted = max(NAME_MIN, min(NAME_MAX, name_width))
    name = NAME_MIN + max(0, min(width - used, wanted - NAME_MIN))
    return [
        Column(key, title, name if key == "name" else w)
        for key, title, w in _COLUMNS
        if key in keep
    ]


def flags_text(task: TaskState) -> str:
    """Markers: gate waiting, pending trigger, alarms, observe mode, toggles off."""
    parts: list[str] = []
    if task.gate_prompt is not None:
        parts.append("‖gate")
    if task.pending:
        parts.append("◷pend")
    if "crash_loop" in task.alarms:
        parts.append("⚠loop")
    if "stuck_starting" in task.alarms:
        parts.append("⚠stuck")
    for alarm in sorted(task.alarms - {"crash_loop", "stuck_starting"}):
        parts.append(f"⚠{alarm}")
    if task.mode == "observe":
        parts.append("obs")
    if not task.autorestart:
        parts.append("¬ar")
    if not task.watching and task.triggers:
        parts.append("¬w")
    return " ".join(parts)


def exit_text(task: TaskState) -> str:
    """``0``, ``1`` or a signal name without ``SIG``."""
    info = task.last_exit
    if info is None:
        return ""
    if info.signal:
        return info.signal.removeprefix("SIG")
    return str(info.code)


def uptime_text(task: TaskState, now: float) -> str:
    """Time since the current run spawned, for live tasks."""
    if task.status in LIVE_STATUSES and task.started_mono is not None:
        return format_duration(now - task.started_mono)
    return ""


def health_text(task: TaskState) -> str:
    """``ok``, ``fail`` or empty (no check / not known)."""
    if task.healthy is None:
        return "rdy" if task.log_ready else ""
    return "ok" if task.healthy else "fail"


def ports_text(task: TaskState) -> str:
    """``http:8080 db:5432``."""
    return " ".join(f"{k}:{v}" for k, v in task.ports.items())


def _fit(text: str, width: int) -> str:
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, max(0, width - 1)) + "…"


class TaskList(ScrollView, can_focus=True):
    """The task table, a Line API widget: each row is rendered from its TaskState on demand."""

    DEFAULT_CSS = """
    TaskList {
        height: auto;
        max-height: 50%;
        min-height: 3;
        overflow-x: hidden;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "cursor(-10)", "Page up", show=False),
        Binding("pagedown", "cursor(10)", "Page down", show=False),
        Binding("home", "cursor_to(0)", "First", show=False),
        Binding("end", "cursor_to(-1)", "Last", show=False),
    ]

    class Selected(Message):
        """The cursor moved to another task."""

        def __init__(self, name: str) -> None:
            self.name = name
            """The task now selected."""
            super().__init__()

    class Activated(Message):
        """A task row was double-clicked (opens the detail view)."""

        def __init__(self, name: str) -> None:
            self.name = name
            """The task."""
            super().__init__()

    def __init__(self, clock: Clock, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self._state = EngineState()
        self._rows: list[tuple[str, str]] = []
        self._index: dict[str, int] = {}
        self._cursor = 0
        self.tree_mode = True
        """Tree by dependency (True) or flat in definition order."""
        self._styles_for: str | None = None
        self._status_style: dict[Status, Style] = {}
        self._cursor_style = Style()
        self._muted = Style()
        self._pinned: frozenset[str] = frozenset()
        self._groups: dict[str, list[tuple[str, str]]] = {}
        self._group_of: dict[str, str] = {}

    # ------------------------------------------------------------------ data

    @property
    def selected(self) -> str | None:
        """Name of the selected task, if any."""
        if 0 <= self._cursor < len(self._rows):
            return self._rows[self._cursor][0]
        return None

    @property
    def names(self) -> list[str]:
        """Task names in display order."""
        return [name for name, _ in self._rows]

    @property
    def groups(self) -> Groups:
        """Fan-out groups shown as rows: task -> ``(instance, host)`` in definition order."""
        return self._groups

    def set_pinned(self, pinned: frozenset[str]) -> None:
        """Mark the tasks pinned to the multi-pane view."""
        self._pinned = pinned
        self.refresh()

    def update_state(self, state: EngineState, changed: frozenset[str], structure: bool) -> None:
        """Take a new state; repaint only the rows of ``changed`` tasks.

        Args:
            state: The new engine state.
            changed: Tasks whose state object changed.
            structure: Tasks were added/removed or dependencies changed.
        """
        self._state = state
        if structure or not self._rows:
            self._rebuild()
            self.refresh()
            return
        for name in changed:
            for key in (name, self._group_of.get(name)):
                row = self._index.get(key) if key is not None else None
                if row is not None:
                    self.refresh_line(row)

    def _rebuild(self) -> None:
        selected = self.selected
        tasks = self._state.tasks
        self._groups = host_groups(tasks)
        self._group_of = {i: g for g, members in self._groups.items() for i, _ in members}
        if self.tree_mode:
            self._rows = [(name, prefix) for name, _, prefix in tree_order(self._grouped(tasks))]
        else:
            self._rows = []
            for name in tasks:
                group = self._group_of.get(name)
                if group is None:
                    self._rows.append((name, ""))
                elif self._groups[group][0][0] == name:
                    members = self._groups[group]
                    self._rows.append((group, ""))
                    for i, (instance, _) in enumerate(members):
                        self._rows.append((instance, "└─" if i == len(members) - 1 else "├─"))
        self._index = {name: i for i, (name, _) in enumerate(self._rows)}
        longest = max((len(p) + len(n) for n, p in self._rows), default=0)
        self._name_width = longest
        self.virtual_size = Size(self.size.width, len(self._rows))
        if selected in self._index:
            self._cursor = self._index[selected]
        self._cursor = max(0, min(self._cursor, len(self._rows) - 1))

    def _grouped(self, tasks: Mapping[str, TaskState]) -> dict[str, TaskState]:
        """``tasks`` as the tree sees them: each group one node where its first instance
        was, its instances right below it, dependencies on an instance moved to its group."""
        group_of = self._group_of
        if not group_of:
            return dict(tasks)

        def deps(task: TaskState) -> MappingProxyType[str, str]:
            return MappingProxyType({group_of.get(d, d): c for d, c in task.depends_on.items()})

        out: dict[str, TaskState] = {}
        for name, task in tasks.items():
            group = group_of.get(name)
            if group is None:
                out[name] = replace(task, depends_on=deps(task))
            elif group not in out:
                out[group] = TaskState(name=group, depends_on=deps(task))
                for instance, _ in self._groups[group]:
                    out[instance] = TaskState(
                        name=instance, depends_on=MappingProxyType({group: "started"})
                    )
        return out

    def toggle_tree(self) -> None:
        """Switch between tree and flat order."""
        self.tree_mode = not self.tree_mode
        self._rebuild()
        self.refresh()

    def tick(self) -> None:
        """Repaint rows whose uptime changes with time (called about once a second)."""
        for name, _ in self._rows:
            task = self._state.tasks.get(name)
            if task is not None and task.started_mono is not None:
                if task.status in LIVE_STATUSES:
                    self.refresh_line(self._index[name])

    def select(self, name: str) -> None:
        """Move the cursor to ``name``."""
        if name in self._index:
            self._move_to(self._index[name])

    # ------------------------------------------------------------------ rendering

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """Height is one line per task (so ``height: auto`` fits the table)."""
        return max(1, len(self._rows))

    def _ensure_styles(self) -> None:
        theme = self.app.theme
        if self._styles_for == theme:
            return
        variables = self.app.theme_variables
        self._status_style = status_styles(variables)
        self._cursor_style = Style(
            bgcolor=resolve_color(variables, "block-cursor-blurred-background", "#333333")
        )
        self._focus_cursor_style = Style(
            bgcolor=resolve_color(variables, "primary-background", "#224466")
        )
        self._muted = Style(color=resolve_color(variables, "foreground-muted"))
        self._styles_for = theme

    def on_resize(self, event: events.Resize) -> None:
        """Keep the virtual width equal to the widget width (rows never scroll sideways)."""
        self.virtual_size = Size(event.size.width, len(self._rows))

    def render_line(self, y: int) -> Strip:
        """Render row ``y`` of the visible area from its task's current state."""
        self._ensure_styles()
        width = self.size.width
        base = self.rich_style
        index = self.scroll_offset.y + y
        if index >= len(self._rows):
            return Strip.blank(width, base)
        name, prefix = self._rows[index]
        task = self.row_state(name)
        if task is None:
            return Strip.blank(width, base)
        text = self.row_text(task, prefix, width)
        if index == self._cursor:
            text.stylize(self._focus_cursor_style if self.has_focus else self._cursor_style)
        strip = Strip(list(text.render(self.app.console)), text.cell_len)
        return strip.apply_style(base).crop_extend(0, width, base)

    def row_state(self, name: str) -> TaskState | None:
        """The state a row shows: the task's, or its group's summary."""
        members = self._groups.get(name)
        if members is None:
            return self._state.tasks.get(name)
        tasks = self._state.tasks
        return group_state(name, [tasks[i] for i, _ in members if i in tasks])

    def row_text(self, task: TaskState, prefix: str, width: int) -> Text:
        """The row of ``task`` as styled text of ``width`` cells."""
        status_style = self._status_style.get(task.status, Style())
        columns = layout_columns(width, getattr(self, "_name_width", 12))
        text = Text(end="", no_wrap=True)
        now = self._clock()
        for i, column in enumerate(columns):
            if i:
                text.append(" ")
            key = column.key
            if key == "glyph":
                text.append(STATUS_GLYPHS.get(task.status, "?"), status_style)
            elif key == "name":
                pin = "*" if task.name in self._pinned else ""
                label = task.name
                if task.host and task.name in self._group_of:
                    label = f"@{task.host}"  # under its group's row
                elif task.name in self._groups:
                    label = f"{task.name} ×{len(self._groups[task.name])}"
                text.append(_fit(prefix, len(prefix)), self._muted)
                text.append(_fit(label + pin, column.width - len(prefix)), Style(bold=True))
            elif key == "status":
                text.append(_fit(task.status.value, column.width), status_style)
            elif key == "flags":
                flags = flags_text(task)
                style = self._status_style.get(Status.FAILED) if task.alarms else None
                if style is None and task.gate_prompt is not None:
                    style = self._status_style.get(Status.GATED)
                text.append(_fit(flags, column.width), style or Style())
            elif key == "exit":
                info = task.last_exit
                style = Style()
                if info is not None and not info.success:
                    style = self._status_style.get(Status.FAILED, Style())
                text.append(_fit(exit_text(task), column.width), style)
            elif key == "restarts":
                value = str(task.restarts) if task.restarts else ""
                text.append(_fit(value, column.width))
            elif key == "uptime":
                text.append(_fit(uptime_text(task, now), column.width), self._muted)
            elif key == "health":
                value = health_text(task)
                style = Style()
                if task.healthy is False:
                    style = self._status_style.get(Status.UNHEALTHY, Style())
                text.append(_fit(value, column.width), style)
            elif key == "kind":
                text.append(_fit("job" if task.kind == "job" else "svc", column.width), self._muted)
            elif key == "ports":
                text.append(_fit(ports_text(task), column.width), self._muted)
        return text

    def header_text(self, width: int) -> Text:
        """Column titles aligned with the rows."""
        columns = layout_columns(width, getattr(self, "_name_width", 12))
        return Text(" ".join(_fit(c.title, c.width) for c in columns), end="", no_wrap=True)

    # ------------------------------------------------------------------ interaction

    def _move_to(self, index: int) -> None:
        if not self._rows:
            return
        index = max(0, min(index, len(self._rows) - 1))
        if index == self._cursor:
            return
        old = self._cursor
        self._cursor = index
        self.refresh_line(old)
        self.refresh_line(index)
        self.scroll_to_region_row(index)
        self.post_message(self.Selected(self._rows[index][0]))

    def scroll_to_region_row(self, index: int) -> None:
        """Scroll so that row ``index`` is visible."""
        top = self.scroll_offset.y
        height = self.size.height
        if index < top:
            self.scroll_to(y=index, animate=False)
        elif height and index >= top + height:
            self.scroll_to(y=index - height + 1, animate=False)

    def action_cursor(self, delta: int) -> None:
        """Move the cursor by ``delta`` rows."""
        self._move_to(self._cursor + delta)

    def action_cursor_to(self, index: int) -> None:
        """Move the cursor to row ``index`` (-1: the last)."""
        self._move_to(len(self._rows) - 1 if index < 0 else index)

    def on_click(self, event: events.Click) -> None:
        """Select the clicked row; a double click opens the detail view."""
        index = self.scroll_offset.y + event.y
        if 0 <= index < len(self._rows):
            self._move_to(index)
            if event.chain >= 2:
                self.post_message(self.Activated(self._rows[index][0]))

    def on_focus(self) -> None:
        """Repaint the cursor row in its focused colour."""
        self.refresh()

    def on_blur(self) -> None:
        """Repaint the cursor row in its unfocused colour."""
        self.refresh()
