"""An opt-in event-loop lag probe: ``DEVSTER_LOOP_LAG_FILE=path`` records loop lag samples.

Why: the cockpit, the engine and every output reader share one asyncio loop, so "is the UI
smooth while tasks flood their output" is the question "how late do loop callbacks run".
The probe schedules a callback every :data:`INTERVAL` seconds and records how late it ran;
on exit the samples are written to the file named by :data:`ENV_VAR` (one
``monotonic_time lag_seconds`` pair per line, times from ``time.monotonic`` so a benchmark
can cut them to its own measuring window).  Without the variable nothing is scheduled.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from array import array
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

ENV_VAR = "DEVSTER_LOOP_LAG_FILE"
"""Environment variable naming the file the samples are written to."""

INTERVAL = 0.05
"""Seconds between two samples."""

MAX_SAMPLES = 720_000
"""Samples kept at most (10 hours at 20 per second, 11 MiB); later ones are counted only."""

HEADER = "# devster loop lag: columns monotonic_time lag_seconds"
"""First line of a samples file."""


class LagProbe:
    """Samples how late a periodic loop callback runs.

    Args:
        path: Where :meth:`write` puts the samples.
        interval: Seconds between samples.
        clock: Monotonic clock stamped on each sample (default ``time.monotonic``).
    """

    def __init__(
        self,
        path: Path,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        """The samples file."""
        self.interval = interval
        """Seconds between samples."""
        self.times: array[float] = array("d")
        """When each sample was taken (``clock`` seconds)."""
        self.lags: array[float] = array("d")
        """How late each callback ran, in seconds (never negative)."""
        self.overflow = 0
        """Samples not kept because :data:`MAX_SAMPLES` was reached."""
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None

    @property
    def running(self) -> bool:
        """Whether the probe is sampling."""
        return self._handle is not None

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start sampling on ``loop`` (default: the running loop)."""
        if self._handle is not None:
            return
        self._loop = loop or asyncio.get_running_loop()
        self._schedule()

    def _schedule(self) -> None:
        loop = self._loop
        assert loop is not None
        due = loop.time() + self.interval
        self._handle = loop.call_at(due, self._tick, due)

    def _tick(self, due: float) -> None:
        loop = self._loop
        assert loop is not None
        lag = max(0.0, loop.time() - due)
        if len(self.lags) < MAX_SAMPLES:
            self.times.append(self._clock())
            self.lags.append(lag)
        else:
            self.overflow += 1
        self._schedule()

    def stop(self) -> None:
        """Stop sampling (the samples are kept)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def write(self) -> None:
        """Write the samples to :attr:`path` (blocking; see :meth:`aclose`)."""
        lines = [HEADER]
        lines.extend(f"{t:.6f} {lag:.6f}" for t, lag in zip(self.times, self.lags, strict=True))
        self.path.write_text("\n".join(lines) + "\n", encoding="ascii")

    async def aclose(self) -> None:
        """Stop sampling and write the samples from a worker thread.

        A file that cannot be written is logged, never raised: the probe must not keep
        devster from stopping its tasks.
        """
        self.stop()
        try:
            await asyncio.to_thread(self.write)
        except OSError as exc:
            log.warning("loop lag samples not written to %s: %s", self.path, exc)


def probe_from_env(environ: Mapping[str, str] | None = None) -> LagProbe | None:
    """A probe writing to ``$DEVSTER_LOOP_LAG_FILE``, or None when the variable is unset."""
    env = os.environ if environ is None else environ
    target = env.get(ENV_VAR)
    return LagProbe(Path(target)) if target else None


def read_samples(path: Path) -> list[tuple[float, float]]:
    """The ``(monotonic_time, lag_seconds)`` samples of a file written by a probe.

    Raises:
        OSError: when the file cannot be read.
        ValueError: when a line is not two numbers.
    """
    samples: list[tuple[float, float]] = []
    for raw in path.read_text(encoding="ascii").splitlines():
        if not raw or raw.startswith("#"):
            continue
        t, lag = raw.split()
        samples.append((float(t), float(lag)))
    return samples


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by the nearest-rank method.

    Raises:
        ValueError: for no values or ``q`` outside 0..100.
    """
    if not values:
        raise ValueError("no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
