"""Every key binding of the cockpit in one table: the app's BINDINGS, the help screen and docs."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True, slots=True)
class Key:
    """One binding: keys, the app action, what it does and its help group."""

    keys: str
    """Comma-separated Textual key names."""
    action: str
    """App action (``action_NAME``) with arguments."""
    description: str
    """Shown in the help screen and the palette."""
    group: str
    """Help screen section."""
    shown: str = ""
    """How the keys are written in help (default: derived from ``keys``)."""

    def display(self) -> str:
        """The keys as a person types them."""
        if self.shown:
            return self.shown
        return " / ".join(_pretty(k) for k in self.keys.split(","))


def _pretty(key: str) -> str:
    names = {
        "question_mark": "?",
        "slash": "/",
        "space": "space",
        "enter": "Enter",
        "escape": "Esc",
        "tab": "Tab",
    }
    if key in names:
        return names[key]
    if key.startswith("ctrl+"):
        return "Ctrl-" + key.removeprefix("ctrl+").upper()
    if len(key) == 2 and key[0] == "f" and key[1].isdigit():
        return key.upper()
    if key.startswith("f") and key[1:].isdigit():
        return key.upper()
    return key


KEYMAP: tuple[Key, ...] = (
    Key("r,ctrl+r", "restart", "Restart the selected task", "Task"),
    Key("s,f7", "start", "Start the selected task", "Task"),
    Key("x,f9", "stop", "Stop the selected task", "Task"),
    Key("t", "trigger", "Trigger the selected task now", "Task"),
    Key("a", "approve(False)", "Approve the waiting gate once", "Task"),
    Key("A", "approve(True)", "Approve the gate for the whole session", "Task"),
    Key("R", "toggle_autorestart", "Toggle auto-restart", "Task"),
    Key("W", "toggle_watch", "Toggle file watching", "Task"),
    Key("i", "stdin", "Type into the task's stdin (console stdin)", "Task"),
    Key("enter,d", "detail", "Task detail: config, layers, exits, events", "Views"),
    Key("g", "graph", "Dependency graph", "Views"),
    Key("space", "pin", "Pin/unpin the task for the multi-pane view", "Views"),
    Key("m", "multipane", "Multi-pane view of the pinned tasks", "Views"),
    Key("v", "toggle_tree", "Task list: tree by dependency / flat", "Views"),
    Key("tab", "focus_next", "Move focus between task list and log pane", "Views"),
    Key("slash", "search", "Search the log (regular expression)", "Log pane"),
    Key("n", "next_match", "Next match", "Log pane"),
    Key("N", "previous_match", "Previous match", "Log pane"),
    Key("f", "filter", "Show only matching lines (toggle)", "Log pane"),
    Key("e", "cycle_stream", "Stream: both / stdout / stderr", "Log pane"),
    Key("c", "clear", "Clear the log pane", "Log pane"),
    Key("l", "last_restart", "Jump to the last restart", "Log pane"),
    Key("G,end", "follow", "Follow the newest output", "Log pane"),
    Key("escape", "escape", "Close the search / clear the highlight", "Log pane"),
    Key("question_mark,f1", "help", "This help", "App"),
    Key("ctrl+p", "command_palette", "Command palette (every action, themes)", "App"),
    Key("q,ctrl+c", "quit", "Quit (stops the tasks, like Ctrl-C headless)", "App"),
)
"""Every app-level binding.  Task list navigation: up/down, j/k, PgUp/PgDn, Home/End."""

NAVIGATION: tuple[tuple[str, str], ...] = (
    ("↑ ↓ / j k", "Move in the task list or graph"),
    ("PgUp PgDn Home End", "Page / jump in the task list"),
    ("mouse", "Click selects; double click opens the detail; wheel scrolls"),
)
"""Widget-level keys listed in help."""


def bindings() -> list[Binding]:
    """The Textual bindings for :data:`KEYMAP`."""
    result: list[Binding] = []
    for key in KEYMAP:
        result.append(
            Binding(
                key.keys,
                key.action,
                key.description,
                show=False,
                priority=key.action == "quit" and "ctrl+c" in key.keys,
            )
        )
    return result
