"""The cockpit's terminal driver: Textual's Linux driver, made to survive its terminal closing.

Why: when the terminal goes away (a window closed, ``tmux kill-session``, an ssh connection
dropped), every write to it fails with EIO.  Textual's output thread died on the first such
write; the next thirty frames filled its queue and the event loop blocked for good on the
thirty-first, so the tasks were never stopped (measured: the stall watchdog fired after 5 s
and the guard SIGKILLed them).  An input read could fail the same way and end the app in a
panic with a traceback.  Here the output thread writes to a :class:`TerminalOutput` that
never raises and never blocks once the terminal is gone, a failed read ends input quietly,
and the loss is reported to the app once, on its loop, as ``app.terminal_lost()`` (the
cockpit treats it as the SIGHUP it is).  Standard output and error that pointed at the lost
terminal are pointed at ``/dev/null``, so no later write (a last message, the interpreter's
flush at exit) fails.

The driver also draws on standard output's terminal when standard error is redirected
(``devster up 2>devster.log``): Textual draws on standard error, which put the whole screen
into the file and left the terminal blank.
"""

from __future__ import annotations

import contextlib
import os
import select
import stat
import sys
import threading
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from textual.drivers.linux_driver import LinuxDriver

if TYPE_CHECKING:
    from textual.app import App
    from textual.driver import Driver


def driver_for(default: type[Driver]) -> type[Driver]:
    """:class:`TerminalDriver` where Textual would use its Linux driver, else ``default``
    (a driver named by ``TEXTUAL_DRIVER``, like the web view's, is kept)."""
    return TerminalDriver if default is LinuxDriver else default


def terminal_stream() -> IO[str] | None:
    """Where the cockpit draws: standard error if it is a terminal (Textual's choice), else
    standard output if that is one, else standard error anyway."""
    for stream in (sys.__stderr__, sys.__stdout__):
        try:
            if stream is not None and stream.isatty():
                return stream
        except (OSError, ValueError):  # closed or detached
            continue
    return sys.__stderr__


def silence(fds: tuple[int, ...], device: int | None) -> None:
    """Point each of ``fds`` that refers to terminal ``device`` (``st_rdev``; None: any) at
    ``/dev/null``, so writes meant for a terminal that is gone succeed and go nowhere."""
    null: int | None = None
    try:
        for fd in fds:
            try:
                info = os.fstat(fd)
            except OSError:
                continue
            if not stat.S_ISCHR(info.st_mode) or (device is not None and info.st_rdev != device):
                continue
            if null is None:
                null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd)
    except OSError:
        pass
    finally:
        if null is not None:
            os.close(null)


def tell(text: str) -> None:
    """Write ``text`` to standard error; a terminal that is gone swallows it.

    The cockpit's own last words ("stopping tasks…") must not raise when the terminal has
    vanished: standard error is then pointed at ``/dev/null`` (see :func:`silence`), so what
    stays in its buffer cannot fail the interpreter's flush at exit (exit status 120).
    """
    stream = sys.stderr
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        with contextlib.suppress(OSError, ValueError):
            silence((stream.fileno(),), None)
            stream.flush()


class TerminalOutput:
    """The file Textual's output thread writes to: the terminal's descriptor, unbuffered.

    The first write that fails (EIO, EPIPE, ...) marks the terminal gone and calls
    ``on_gone`` once; from then on every write is dropped, so the output thread keeps
    draining its queue and nobody blocks on it.

    Args:
        fd: The terminal's file descriptor.
        encoding: How text is encoded for it.
        on_gone: Called (in the writing thread) when the terminal is found gone.
    """

    def __init__(self, fd: int, encoding: str, on_gone: Callable[[], None]) -> None:
        self._fd = fd
        self._encoding = encoding
        self._on_gone = on_gone
        self.gone = False
        """Whether a write failed (the terminal is gone)."""

    def write(self, text: str) -> int:
        """Write all of ``text``, or drop it when the terminal is gone."""
        if self.gone:
            return len(text)
        data = memoryview(text.encode(self._encoding, "replace"))
        while data:
            try:
                written = os.write(self._fd, data)
            except BlockingIOError:  # someone made the terminal non-blocking: wait for room
                select.select([], [self._fd], [], 1.0)
                continue
            except OSError:
                self.gone = True
                self._on_gone()
                break
            data = data[written:]
        return len(text)

    def flush(self) -> None:
        """Nothing to flush: every write goes straight to the descriptor."""

    def fileno(self) -> int:
        """The terminal's descriptor."""
        return self._fd

    def isatty(self) -> bool:
        """A terminal (it was one when the driver started)."""
        return True


class TerminalDriver(LinuxDriver):
    """Textual's Linux driver whose terminal may vanish (see the module docstring).

    Args:
        app: The app.
        debug: Textual's debug mode.
        mouse: Report mouse events.
        size: Initial size, or None to ask the terminal.
    """

    def __init__(
        self,
        app: App[Any],
        *,
        debug: bool = False,
        mouse: bool = True,
        size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(app, debug=debug, mouse=mouse, size=size)
        stream = terminal_stream()
        fd = stream.fileno() if stream is not None else 2
        try:
            self._device: int | None = os.fstat(fd).st_rdev
        except OSError:
            self._device = None
        self._lost_once = threading.Lock()
        self._lost = False
        encoding = getattr(stream, "encoding", None) or "utf-8"
        self.output = TerminalOutput(fd, encoding, self.terminal_gone)
        """What Textual's output thread writes to."""
        # The file Textual's output thread is built from (textual is pinned: see pyproject).
        self._file = self.output  # type: ignore[assignment]

    def run_input_thread(self) -> None:
        """Read input as Textual does; a read that fails means the terminal is gone."""
        try:
            super().run_input_thread()
        except OSError:
            self.terminal_gone()

    def terminal_gone(self) -> None:
        """The terminal is gone (called from the output or input thread): silence standard
        output and error where they pointed at it, and tell the app once, on its loop."""
        with self._lost_once:
            if self._lost:
                return
            self._lost = True
        self.output.gone = True
        silence((1, 2), self._device)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing left to tell
            self._loop.call_soon_threadsafe(self._report)

    def _report(self) -> None:
        app = self._app
        handler = getattr(app, "terminal_lost", None)
        if callable(handler):
            handler()
        else:
            app.exit()
