"""Small modal screens: the confirmation for ``mode: observe`` tasks and the stdin prompt."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label


class ConfirmScreen(ModalScreen[bool]):
    """Ask yes or no; dismisses with the answer (y / n / Esc, or the buttons)."""

    DEFAULT_CSS = """
    ConfirmScreen {
        align: center middle;
    }
    ConfirmScreen > Vertical {
        width: 60;
        max-width: 95%;
        height: auto;
        border: thick $warning;
        background: $surface;
        padding: 1 2;
    }
    ConfirmScreen Label {
        width: 100%;
        margin-bottom: 1;
    }
    ConfirmScreen Horizontal {
        height: auto;
        align-horizontal: right;
    }
    ConfirmScreen Button {
        margin-left: 2;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question
        """The question shown."""

    def compose(self) -> ComposeResult:
        """The question and two buttons."""
        with Vertical():
            yield Label(self.question, markup=False)
            with Horizontal():
                yield Button("Yes (y)", variant="warning", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        """Focus "No": the safe answer."""
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        """Dismiss with ``yes``."""
        self.dismiss(yes)


class StdinScreen(ModalScreen[None]):
    """A prompt whose lines are sent to a task's stdin; stays open until Esc."""

    DEFAULT_CSS = """
    StdinScreen {
        align: center bottom;
    }
    StdinScreen > Vertical {
        width: 100%;
        height: auto;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, task_name: str) -> None:
        super().__init__()
        self.task_name = task_name
        """The task that receives the lines."""
        self.sent: list[str] = []
        """Lines sent from this prompt."""

    def compose(self) -> ComposeResult:
        """A label and the input line."""
        with Vertical():
            yield Label(
                f"stdin of {self.task_name}: Enter sends the line, Esc closes", markup=False
            )
            yield Input(placeholder="type a line", id="stdin")

    def on_mount(self) -> None:
        """Focus the input (no cursor blink: deterministic snapshots)."""
        line = self.query_one(Input)
        line.cursor_blink = False
        line.focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        from devster_tui.tui.app import CockpitApp

        app = self.app
        if isinstance(app, CockpitApp):
            app.send_stdin(self.task_name, event.value)
        self.sent.append(event.value)
        event.input.value = ""

    def action_close(self) -> None:
        """Close the prompt."""
        self.dismiss(None)
