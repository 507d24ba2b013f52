"""The masked prompt for ``prompt`` secrets, asked once before the cockpit opens.

Why a small app of its own: secrets are read before anything starts (a task must never run
with half of its secrets), so the question comes before the engine and the cockpit exist.
The typed text is masked and goes nowhere but the answer returned to the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.driver import Driver
from textual.widgets import Input, Label, Static


class SecretPromptApp(App[dict[str, str] | None]):
    """Asks each secret once with masked input; returns name -> value, or None (Esc).

    Args:
        requests: ``(secret name, question)`` pairs, in order.
    """

    DEFAULT_CSS = """
    SecretPromptApp { align: center middle; }
    #secret-box { width: 72; height: auto; border: round $accent; padding: 1 2; }
    #secret-box Label { margin-top: 1; }
    #secret-hint { color: $text-muted; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", priority=True),
    ]

    def __init__(self, requests: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.requests = list(requests)
        """What to ask, in order."""

    def get_driver_class(self) -> type[Driver]:
        """The cockpit's driver: drawn on the terminal when stderr is redirected, and a
        closed terminal ends the prompt instead of wedging it."""
        from devster_tui.tui.terminal import driver_for

        return driver_for(super().get_driver_class())

    def compose(self) -> ComposeResult:
        """A title, one masked input per secret, and a hint line."""
        count = len(self.requests)
        with Vertical(id="secret-box"):
            yield Static(
                f"devster needs {count} secret{'s' if count != 1 else ''} before it starts",
                id="secret-title",
            )
            for index, (name, question) in enumerate(self.requests):
                yield Label(f"{question} ({name})", markup=False)
                field = Input(password=True, id=f"secret-{index}", placeholder="(hidden)")
                field.cursor_blink = False
                yield field
            yield Static("Enter: next / start   Esc: cancel (nothing starts)", id="secret-hint")

    def on_mount(self) -> None:
        """Focus the first question."""
        self.query_one("#secret-0", Input).focus()

    def _fields(self) -> list[Input]:
        return [self.query_one(f"#secret-{i}", Input) for i in range(len(self.requests))]

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter: go to the next empty question, or finish when all are answered."""
        event.stop()
        fields = self._fields()
        for field in fields:
            if not field.value:
                field.focus()
                if field is event.input:
                    self.notify("a value is needed", severity="warning")
                return
        self.exit(
            {name: field.value for (name, _q), field in zip(self.requests, fields, strict=True)}
        )

    def action_cancel(self) -> None:
        """Give up: nothing starts."""
        self.exit(None)


def ask_secrets(requests: Sequence[tuple[str, str]]) -> dict[str, str] | None:
    """Ask ``requests`` in a full-screen masked prompt (blocking; before the engine starts).

    Args:
        requests: ``(secret name, question)`` pairs.

    Returns:
        name -> value, or None when the user cancelled.
    """
    if not requests:
        return {}
    return SecretPromptApp(requests).run()
