"""The graph view: tasks and observers in dependency levels, with typed, live-coloured edges.

Each row is a node placed at its level (longest path from a source), followed by its
incoming edges: dependencies (``◀─ name [condition]``), triggers (``◀┄ ◇observer``) and
pipes (``◀═ task.stream``), each edge coloured by the live status of its source.  Rows are
rendered on demand (Line API), so fifty tasks or five hundred scroll the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from devster_tui.state.model import EngineState, Status, TaskState
from devster_tui.tui.bridge import StateChange
from devster_tui.tui.themes import STATUS_GLYPHS, resolve_color, status_styles

LEGEND = "edges: ◀─ depends on [condition]   ◀┄ ◇ trigger   ◀═ pipe (stdin from)"
"""Shown above the graph."""


@dataclass(frozen=True, slots=True)
class Edge:
    """An incoming edge of a node."""

    kind: str
    """``depends``, ``trigger`` or ``pipe``."""
    source: str
    """Source node (task or observer name)."""
    label: str
    """Condition, or the piped stream."""


@dataclass(frozen=True, slots=True)
class Node:
    """A row of the graph."""

    name: str
    """Task or observer name."""
    observer: bool
    """An observer (trigger source) rather than a task."""
    level: int
    """Longest path from a source."""
    edges: tuple[Edge, ...]
    """Incoming edges."""


def _pipe_source(ref: str) -> tuple[str, str]:
    task, _, stream = ref.partition(".")
    return task, stream or "both"


def build_graph(tasks: Mapping[str, TaskState]) -> list[Node]:
    """Nodes in level order (definition order within a level); observers first."""
    observers: list[str] = []
    for task in tasks.values():
        for name in task.triggers:
            if name not in observers and name not in tasks:
                observers.append(name)
    incoming: dict[str, list[Edge]] = {}
    for task in tasks.values():
        edges = [Edge("depends", dep, cond) for dep, cond in task.depends_on.items()]
        edges += [Edge("trigger", obs, "") for obs in task.triggers]
        for ref in task.stdin_from:
            if ref == "console":
                continue
            source, stream = _pipe_source(ref)
            edges.append(Edge("pipe", source, stream))
        incoming[task.name] = edges
    levels: dict[str, int] = dict.fromkeys(observers, 0)

    def level(name: str, seen: frozenset[str]) -> int:
        if name in levels:
            return levels[name]
        sources = [
            e.source
            for e in incoming.get(name, [])
            if (e.source in tasks or e.source in observers) and e.source not in seen
        ]
        value = 0 if not sources else 1 + max(level(s, seen | {name}) for s in sources)
        levels[name] = value
        return value

    for name in tasks:
        level(name, frozenset())
    nodes = [Node(name, True, 0, ()) for name in observers]
    nodes += [Node(name, False, levels[name], tuple(incoming[name])) for name in tasks]
    order = {name: i for i, name in enumerate([*observers, *tasks])}
    nodes.sort(key=lambda n: (n.level, not n.observer, order[n.name]))
    return nodes


class GraphView(ScrollView, can_focus=True):
    """The graph rows (Line API); Enter opens the detail of the node under the cursor."""

    DEFAULT_CSS = """
    GraphView {
        height: 1fr;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "cursor(-10)", "Page up", show=False),
        Binding("pagedown", "cursor(10)", "Page down", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.nodes: list[Node] = []
        """Rows in order."""
        self.cursor = 0
        """Row under the cursor."""
        self._state = EngineState()
        self._width = 0

    def set_state(self, state: EngineState, structure: bool) -> None:
        """Take a new state; rebuild the layout when the structure changed."""
        self._state = state
        if structure or not self.nodes:
            self.nodes = build_graph(state.tasks)
            self._width = max((self._row(i).cell_len for i in range(len(self.nodes))), default=0)
            self.virtual_size = Size(max(self._width, self.size.width), len(self.nodes))
        self.refresh()

    def select(self, name: str | None) -> None:
        """Put the cursor on ``name``."""
        for i, node in enumerate(self.nodes):
            if node.name == name:
                self.cursor = i
                self.scroll_to(y=max(0, i - self.size.height // 2), animate=False)
        self.refresh()

    @property
    def selected(self) -> Node | None:
        """The node under the cursor."""
        return self.nodes[self.cursor] if 0 <= self.cursor < len(self.nodes) else None

    def _row(self, index: int) -> Text:
        variables = self.app.theme_variables
        styles = status_styles(variables)
        observer_style = Style(color=resolve_color(variables, "accent"))
        muted = Style(color=resolve_color(variables, "foreground-muted"))
        node = self.nodes[index]
        text = Text(end="", no_wrap=True)
        text.append("  " * node.level)
        if node.observer:
            text.append("◇ ", observer_style)
            text.append(node.name, observer_style + Style(bold=True))
            text.append("  observer", muted)
            return text
        task = self._state.tasks.get(node.name)
        status = task.status if task is not None else Status.DEFINED
        text.append(f"{STATUS_GLYPHS.get(status, '?')} ", styles[status])
        text.append(node.name, Style(bold=True))
        text.append(f" {status.value}", styles[status])
        if task is not None and task.gate_prompt is not None:
            text.append(" ‖gate", styles[Status.GATED])
        for edge in node.edges:
            source = self._state.tasks.get(edge.source)
            style = styles[source.status] if source is not None else observer_style
            text.append("  ")
            if edge.kind == "depends":
                text.append(f"◀─ {edge.source}", style)
                text.append(f" [{edge.label}]", muted)
            elif edge.kind == "trigger":
                text.append(f"◀┄ ◇{edge.source}", style)
            else:
                text.append(f"◀═ {edge.source}.{edge.label}", style)
        return text

    def render_line(self, y: int) -> Strip:
        """Render visible row ``y``."""
        base = self.rich_style
        width = self.scrollable_content_region.width
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        if index >= len(self.nodes):
            return Strip.blank(width, base)
        text = self._row(index)
        if index == self.cursor:
            text.stylize(
                Style(bgcolor=resolve_color(self.app.theme_variables, "primary-background"))
            )
        strip = Strip(list(text.render(self.app.console)), text.cell_len)
        return strip.apply_style(base).crop_extend(scroll_x, scroll_x + width, base)

    def action_cursor(self, delta: int) -> None:
        """Move the cursor."""
        if not self.nodes:
            return
        self.cursor = max(0, min(len(self.nodes) - 1, self.cursor + delta))
        top = self.scroll_offset.y
        height = self.scrollable_content_region.height
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)
        self.refresh()

    def on_click(self, event: events.Click) -> None:
        """Select the clicked row."""
        index = self.scroll_offset.y + event.y
        if 0 <= index < len(self.nodes):
            self.cursor = index
            self.refresh()


class GraphScreen(Screen[None]):
    """The whole graph; Enter opens a task's detail, Esc returns."""

    DEFAULT_CSS = """
    GraphScreen #graph-title, GraphScreen #graph-legend {
        height: 1;
    }
    GraphScreen #graph-title {
        background: $primary-background;
        text-style: bold;
    }
    GraphScreen #graph-legend {
        color: $foreground-muted;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,g", "app.pop_screen", "Back"),
        Binding("enter,d", "open", "Detail"),
    ]

    def __init__(self, selected: str | None) -> None:
        super().__init__()
        self._selected = selected

    def compose(self) -> ComposeResult:
        """Title, legend and the graph."""
        yield Static(" devster · graph (Enter: detail, Esc returns)", id="graph-title")
        yield Static(LEGEND, id="graph-legend", markup=False)
        yield GraphView(id="graph")

    def on_mount(self) -> None:
        """Lay the graph out from the current state."""
        from devster_tui.tui.app import CockpitApp

        view = self.query_one(GraphView)
        app = self.app
        if isinstance(app, CockpitApp):
            view.set_state(app.bridge.state, True)
        view.select(self._selected)
        view.focus()

    def state_changed(self, change: StateChange) -> None:
        """Recolour (and re-lay out on structure changes); called by the pump."""
        self.query_one(GraphView).set_state(change.state, change.structure)

    def action_open(self) -> None:
        """Open the detail of the task under the cursor."""
        from devster_tui.tui.app import CockpitApp

        node = self.query_one(GraphView).selected
        app = self.app
        if node is not None and not node.observer and isinstance(app, CockpitApp):
            app.action_detail(node.name)
