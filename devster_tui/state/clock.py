"""Clocks: the one place where the engine reads the time, injected so tests control it.

The reducer never reads a clock; the store stamps every event with the injected clock's
monotonic and wall readings.  Tests use :class:`FakeClock` to make backoff, uptime and
timelines deterministic.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """A source of monotonic and wall-clock time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for durations)."""
        ...

    def wall(self) -> float:
        """UNIX time in seconds (for display and records)."""
        ...


class SystemClock:
    """The real clocks: :func:`time.monotonic` and :func:`time.time`."""

    __slots__ = ()

    def monotonic(self) -> float:
        """Return :func:`time.monotonic`."""
        return time.monotonic()

    def wall(self) -> float:
        """Return :func:`time.time`."""
        return time.time()


class FakeClock:
    """A manual clock: time stands still until :meth:`advance` moves it."""

    __slots__ = ("_mono", "_wall")

    def __init__(self, mono: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        """Start the clock at the given readings.

        Args:
            mono: Initial monotonic reading.
            wall: Initial wall-clock reading (UNIX seconds).
        """
        self._mono = mono
        self._wall = wall

    def monotonic(self) -> float:
        """The current fake monotonic reading."""
        return self._mono

    def wall(self) -> float:
        """The current fake wall-clock reading."""
        return self._wall

    def advance(self, seconds: float) -> None:
        """Move both clocks forward.

        Args:
            seconds: How far; must not be negative.

        Raises:
            ValueError: when ``seconds`` is negative (a monotonic clock never goes back).
        """
        if seconds < 0:
            raise ValueError(f"a clock cannot go backwards ({seconds} s)")
        self._mono += seconds
        self._wall += seconds
