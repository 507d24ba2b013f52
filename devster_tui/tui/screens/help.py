"""The help screen: every binding of the cockpit, from the one key table."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from devster_tui.tui.keymap import KEYMAP, NAVIGATION


def help_table() -> Table:
    """Every binding grouped by section, as a Rich table."""
    table = Table(box=None, show_header=False, padding=(0, 2), expand=False)
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("what")
    group = ""
    for key in KEYMAP:
        if key.group != group:
            group = key.group
            table.add_row(Text(group, style="bold underline"), "")
        table.add_row(Text(key.display()), Text(key.description))
    table.add_row(Text("Navigation", style="bold underline"), "")
    for keys, what in NAVIGATION:
        table.add_row(Text(keys), Text(what))
    return table


class HelpScreen(Screen[None]):
    """Every binding; Esc, q or ? closes."""

    DEFAULT_CSS = """
    HelpScreen {
        background: $background;
    }
    HelpScreen > VerticalScroll {
        padding: 0 1;
    }
    HelpScreen #help-title {
        height: 1;
        background: $primary-background;
        text-style: bold;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "app.pop_screen", "Close"),
    ]

    def compose(self) -> ComposeResult:
        """Title and the table."""
        yield Static(" devster · keys (Esc closes)", id="help-title")
        with VerticalScroll():
            yield Static(help_table())
