"""A last resort for a wedged shutdown: exit hard when the event loop stops turning.

Why: a stop request (SIGTERM, SIGHUP, quit) is carried out on the event loop.  If the loop
itself is stuck, no handler ever runs again and devster would sit there with its tasks
alive, ignoring every further signal.  That happened when the terminal disappeared: Textual's
output thread died on EIO and the loop blocked on its full queue.  The cockpit's terminal
driver (:mod:`devster_tui.tui.terminal`) now turns a vanished terminal into a graceful stop;
this watchdog stays as the last resort for any other wedge.  Once a stop has been requested,
its thread watches a heartbeat the loop updates; when the loop has not turned for ``stall``
seconds it ends the process with ``os._exit``.  The guard process then sees devster gone and
kills every task group, so nothing is left behind (see ``devster_tui.executors.guard``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable


class StallWatchdog:
    """Exit the process when the loop stops turning after a stop was requested."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        stall: float = 5.0,
        beat: float = 0.25,
        exit_fn: Callable[[int], object] = os._exit,
    ) -> None:
        """Create a disarmed watchdog.

        Args:
            loop: The loop whose turning is watched.
            stall: Seconds without a heartbeat after which the process exits.
            beat: Seconds between heartbeats.
            exit_fn: How to exit (``os._exit``; tests pass a recorder).
        """
        self._loop = loop
        self._stall = stall
        self._beat = beat
        self._exit = exit_fn
        self._last = time.monotonic()
        self._armed = threading.Event()
        self._done = threading.Event()
        self._code = 1
        self._handle: asyncio.TimerHandle | None = None
        self.fired = False
        """Whether the watchdog ended (or, with a test ``exit``, would have ended) the process."""

    def arm(self, code: int) -> None:
        """Start watching (idempotent); ``code`` is the exit status if the loop is stuck."""
        if self._armed.is_set():
            return
        self._code = code
        self._last = time.monotonic()
        self._heartbeat()
        self._armed.set()
        threading.Thread(target=self._watch, name="devster-stall-watchdog", daemon=True).start()

    def disarm(self) -> None:
        """Stop watching (the stop completed)."""
        self._done.set()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _heartbeat(self) -> None:
        self._last = time.monotonic()
        if not self._done.is_set():
            self._handle = self._loop.call_later(self._beat, self._heartbeat)

    def _watch(self) -> None:
        while not self._done.wait(self._beat):
            if time.monotonic() - self._last > self._stall:
                self.fired = True
                try:
                    sys.stderr.write(
                        f"devster: stuck for {self._stall:.0f} s while stopping; exiting "
                        "(the guard process ends the tasks)\n"
                    )
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
                self._exit(self._code)
                return
