"""The multi-pane view: several tasks' log panes side by side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import Input, Static

from devster_tui.tui.bridge import OutputView
from devster_tui.tui.widgets.logview import LogView


class MultiPaneScreen(Screen[None]):
    """Up to six log panes in a grid (two or three columns); Esc returns."""

    DEFAULT_CSS = """
    MultiPaneScreen #panes {
        grid-gutter: 0 1;
        height: 1fr;
    }
    MultiPaneScreen #panes LogView {
        height: 1fr;
    }
    MultiPaneScreen #mp-title {
        height: 1;
        background: $primary-background;
        text-style: bold;
    }
    MultiPaneScreen #search {
        display: none;
        dock: bottom;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "Back")]

    def __init__(self, tasks: Sequence[str], output: OutputView) -> None:
        super().__init__()
        self.tasks = list(tasks)
        """The tasks shown, in order."""
        self._output = output

    def compose(self) -> ComposeResult:
        """A title, the grid of panes and a search bar."""
        yield Static(" devster · multi-pane (Tab moves between panes, Esc returns)", id="mp-title")
        with Grid(id="panes"):
            for i, _name in enumerate(self.tasks):
                yield LogView(self._output, id=f"pane-{i}")
        yield Input(placeholder="regex: Enter searches, Esc closes", id="search")

    def on_mount(self) -> None:
        """Bind each pane to its task and size the grid."""
        grid = self.query_one("#panes", Grid)
        count = len(self.tasks)
        columns = 2 if count in (2, 4) else min(3, count)
        grid.styles.grid_size_columns = columns
        grid.styles.grid_size_rows = (count + columns - 1) // columns
        for i, name in enumerate(self.tasks):
            self.query_one(f"#pane-{i}", LogView).show(name)
        self.query_one("#search", Input).cursor_blink = False
        self.query_one("#pane-0", LogView).focus()

    def action_close(self) -> None:
        """Back to the main screen."""
        search = self.query_one("#search", Input)
        if search.display:
            search.display = False
            return
        self.app.pop_screen()
