"""The status bar: task counts per state (in status colours) and the main key hints."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from devster_tui.state.model import EngineState
from devster_tui.tui.bridge import counts
from devster_tui.tui.themes import STATUS_GLYPHS, resolve_color, status_styles

HINTS = (
    ("r", "restart"),
    ("s", "start"),
    ("x", "stop"),
    ("t", "trigger"),
    ("a", "approve"),
    ("/", "search"),
    ("g", "graph"),
    ("?", "help"),
    ("q", "quit"),
)
"""Key hints shown on the right, in order of importance."""


class StatusBar(Static):
    """One line: ``● 3 running ✖ 1 failed ...`` then key hints that fit."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $foreground;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._state = EngineState()
        self.summary = ""
        """Plain text of the counts part (for tests)."""

    def update_state(self, state: EngineState) -> None:
        """Show the counts of ``state``."""
        self._state = state
        self._redraw()

    def on_resize(self) -> None:
        """Fit the hints to the new width."""
        self._redraw()

    def _redraw(self) -> None:
        variables = self.app.theme_variables
        styles = status_styles(variables)
        key_style = Style(color=resolve_color(variables, "accent"), bold=True)
        text = Text(no_wrap=True, overflow="crop")
        parts: list[str] = []
        for status, count in counts(self._state).items():
            text.append(f" {STATUS_GLYPHS[status]}", styles[status])
            text.append(f" {count} {status.value}")
            parts.append(f"{count} {status.value}")
        if self._state.stopping:
            text.append("  stopping…", Style(color=resolve_color(variables, "warning")))
        self.summary = ", ".join(parts)
        width = self.size.width or 80
        hints = Text(no_wrap=True)
        for key, label in HINTS:
            piece = Text.assemble((f" {key}", key_style), f" {label}")
            if text.cell_len + hints.cell_len + piece.cell_len + 2 > width:
                break
            hints.append_text(piece)
        pad = max(1, width - text.cell_len - hints.cell_len)
        text.append(" " * pad)
        text.append_text(hints)
        self.update(text)
