"""Pipes: a task's stdin fed from other tasks' output, a file, or the console.

Why devster sits in the middle instead of joining processes with an OS pipe: the producer
writes only to devster (its output is read, stored and logged as for every task), and each
consumer gets its own bounded buffer and writer.  So restarting a consumer never sends
SIGPIPE to the producer, one producer can feed several consumers (tee), a line handed to a
consumer's stdin is taken out of its buffer first (it reaches that consumer at most once),
and when a consumer is slower than its producer the declared policy decides.  ``drop``
keeps the newest ``buffer`` lines and never slows the producer; every line discarded is
counted in a ``task.output_dropped`` event, never lost silently.  ``block`` is real
backpressure: once a consumer's buffer holds ``buffer`` lines, devster stops reading the
producer's output (:meth:`Process.pause_output`), so the producer's pipe fills and it
waits in ``write()`` (no signal, nothing lost, its log complete); reading resumes when the
buffer is down to half.  A producer therefore runs at the pace of its slowest blocking
consumer, and waits too while such a consumer is not running and its buffer is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from devster_tui.config.schema import StdinSpec, Task
from devster_tui.engine.background import spawn_guarded
from devster_tui.executors.base import Process
from devster_tui.state.events import T
from devster_tui.state.output import OutputStore
from devster_tui.state.store import Store

log = logging.getLogger(__name__)

DROP_REPORT_DELAY: Final = 0.05
"""Drops are summed over this many seconds into one event."""

WRITE_CHUNK: Final = 64 * 1024
"""Bytes written to a consumer's stdin per call (lines are batched up to this size)."""

LOW_WATER: Final = 0.5
"""A blocked producer is read again once its consumer's buffer is down to this fraction."""


def wants_pipe(task: Task) -> bool:
    """Whether ``task`` gets a stdin pipe (a stream source, a file or the console)."""
    spec = task.stdin
    return spec is not None and bool(spec.sources or spec.file or spec.console)


class Pipe:
    """The stdin feed of one consumer task."""

    def __init__(
        self,
        consumer: str,
        spec: StdinSpec,
        job: bool,
        store: Store,
        producers_active: Callable[[], bool],
        on_pressure: Callable[[Pipe, bool], None] = lambda _pipe, _full: None,
    ) -> None:
        """Prepare the feed.

        Args:
            consumer: The consumer task.
            spec: Its stdin configuration.
            job: Whether the consumer is a job (it gets end of file once its producers end).
            store: Where drop events go.
            producers_active: Whether any producer may still print.
            on_pressure: ``block`` only: called with True when the buffer reaches ``buffer``
                lines (pause the producers) and with False when it is down to the low-water
                mark again (resume them).
        """
        self.consumer = consumer
        """The consumer task."""
        self.spec = spec
        """Its stdin configuration."""
        self.buffer: deque[bytes] = deque()
        """Lines waiting for the consumer (without newlines)."""
        self.delivered = 0
        """Lines written to the consumer so far."""
        self.dropped = 0
        """Lines dropped so far (all reported in events)."""
        self.full = False
        """``block``: the buffer reached ``buffer`` lines and its producers are paused."""
        self.blocking = spec.backpressure == "block"
        """Whether a full buffer pauses the producers (else the oldest lines are dropped)."""
        self._limit = spec.buffer
        self._low = int(spec.buffer * LOW_WATER)
        self._on_pressure = on_pressure
        self._job = job
        self._store = store
        self._producers_active = producers_active
        self._proc: Process | None = None
        self._closed_for: Process | None = None
        self._wake = asyncio.Event()
        self._unreported = 0
        self._report: asyncio.TimerHandle | None = None
        self._pump: asyncio.Task[None] | None = None

    def push(self, line: bytes) -> None:
        """Take one producer line.

        ``drop``: a full buffer loses its oldest line (counted).  ``block``: the line is
        always kept; reaching ``buffer`` lines pauses the producers, so the buffer exceeds
        ``buffer`` only by what was already read (the rest of the chunk being split, and
        what a producer that ended left in its pipe).
        """
        buffer = self.buffer
        buffer.append(line)
        if len(buffer) >= self._limit:
            if self.blocking:
                if not self.full:
                    self.full = True
                    self._on_pressure(self, True)
            elif len(buffer) > self._limit:
                buffer.popleft()
                self._drop(1)
        self._wake.set()

    def _drop(self, lines: int) -> None:
        self.dropped += lines
        self._unreported += lines
        if self._report is None:
            self._report = asyncio.get_running_loop().call_later(
                DROP_REPORT_DELAY, self._flush_drops
            )

    def _flush_drops(self) -> None:
        self._report = None
        lines, self._unreported = self._unreported, 0
        if lines:
            sources = self.spec.sources
            self._store.dispatch(
                T.TASK_OUTPUT_DROPPED,
                self.consumer,
                consumer=self.consumer,
                lines=lines,
                sources=sources,
                policy=self.spec.backpressure,
            )

    def attach(self, proc: Process | None) -> None:
        """The consumer's process started (or ended, with None)."""
        self._proc = proc
        if self._pump is None:
            self._pump = spawn_guarded(self._run(), f"pipe:{self.consumer}", logger=log)
        self._wake.set()

    def poke(self) -> None:
        """Re-check whether the consumer should get end of file (a producer ended)."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.buffer and self._proc is not None:
                writer = self._proc
                batch: list[bytes] = []
                size = 0
                while self.buffer and size < WRITE_CHUNK:
                    line = self.buffer.popleft()
                    batch.append(line)
                    size += len(line) + 1
                if self.full and len(self.buffer) <= self._low:
                    self.full = False
                    self._on_pressure(self, False)
                try:
                    await writer.write_stdin(b"\n".join(batch) + b"\n")
                except (OSError, RuntimeError):
                    # The consumer ended mid-write.  The batch was taken out of the buffer
                    # first (part of it may have been read): at most once, and counted.
                    self._drop(len(batch))
                    if self._proc is writer:
                        self._proc = None
                    break
                self.delivered += len(batch)
            proc = self._proc
            if (
                proc is not None
                and self._job
                and not self.buffer
                and proc is not self._closed_for
                and not self._producers_active()
            ):
                self._closed_for = proc
                with contextlib.suppress(OSError):
                    proc.close_stdin()

    async def close(self) -> None:
        """Stop the feed and report outstanding drops."""
        if self._report is not None:
            self._report.cancel()
            self._flush_drops()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump


class PipeManager:
    """Every pipe of one engine: stream pipes, file stdin and console stdin."""

    def __init__(
        self,
        store: Store,
        output: OutputStore,
        tasks: Mapping[str, Task],
        root: Path,
        is_active: Callable[[str], bool],
    ) -> None:
        """Prepare the pipes; nothing is fed until :meth:`start`.

        Args:
            store: Where events go.
            output: Where producers' lines come from.
            tasks: The active tasks.
            root: The project directory (``stdin: {file: ...}`` is relative to it).
            is_active: Whether a task's lifecycle is active (it may still print).
        """
        self._store = store
        self._output = output
        self._tasks = tasks
        self._root = root
        self._is_active = is_active
        self.pipes: dict[str, Pipe] = {}
        """Consumer name -> its stream pipe."""
        self.paused: set[str] = set()
        """Producers whose output is paused because a blocking consumer's buffer is full."""
        self._producers: dict[str, list[str]] = {}
        self._sources: dict[str, list[str]] = {}
        self._producer_procs: dict[str, Process] = {}
        self._procs: dict[str, Process] = {}
        self._feeds: set[asyncio.Task[None]] = set()
        self._unsubscribe: list[Callable[[], None]] = []

    def start(self) -> None:
        """Subscribe every stream pipe to its producers' output."""
        for name, task in self._tasks.items():
            spec = task.stdin
            if spec is None or not spec.sources:
                continue
            producers: list[str] = []
            pipe = Pipe(
                name,
                spec,
                task.kind == "job",
                self._store,
                self._any_active(producers),
                self._pressure,
            )
            self.pipes[name] = pipe
            self._sources[name] = producers
            for ref in spec.sources:
                producer, _, stream = ref.partition(".")
                if producer not in self._tasks:
                    continue
                if producer not in producers:
                    producers.append(producer)
                consumers = self._producers.setdefault(producer, [])
                if name not in consumers:
                    consumers.append(name)
                self._unsubscribe.append(
                    self._output.subscribe_lines(producer, _feeder(pipe, stream or None))
                )

    def _any_active(self, producers: list[str]) -> Callable[[], bool]:
        def any_active() -> bool:
            return any(self._is_active(p) for p in producers)

        return any_active

    def _pressure(self, pipe: Pipe, full: bool) -> None:
        """A blocking pipe filled up (pause its producers) or drained (resume those that no
        other full pipe holds)."""
        for producer in self._sources.get(pipe.consumer, ()):
            if full:
                self._hold(producer)
            elif producer in self.paused and not self._held(producer):
                self.paused.discard(producer)
                proc = self._producer_procs.get(producer)
                if proc is not None:
                    proc.resume_output()

    def _held(self, producer: str) -> bool:
        return any(self.pipes[c].full for c in self._producers.get(producer, ()))

    def _hold(self, producer: str) -> None:
        self.paused.add(producer)
        proc = self._producer_procs.get(producer)
        if proc is not None:
            proc.pause_output()

    def attach(self, name: str, proc: Process | None) -> None:
        """Task ``name``'s process started (``proc``) or ended (None)."""
        if name in self._producers:
            if proc is None:
                self._producer_procs.pop(name, None)
            else:
                self._producer_procs[name] = proc
                if self._held(name):
                    self._hold(name)
        task = self._tasks.get(name)
        if task is None or task.stdin is None:
            return
        if proc is None:
            self._procs.pop(name, None)
        else:
            self._procs[name] = proc
        pipe = self.pipes.get(name)
        if pipe is not None:
            pipe.attach(proc)
        elif proc is not None and task.stdin.file:
            feed = spawn_guarded(
                self._feed_file(name, task.stdin.file, proc), f"stdin file of {name}", logger=log
            )
            self._feeds.add(feed)
            feed.add_done_callback(self._feeds.discard)

    def producer_settled(self, name: str) -> None:
        """A producer's run ended: job consumers may get end of file."""
        for consumer in self._producers.get(name, ()):
            self.pipes[consumer].poke()

    async def _feed_file(self, name: str, file: str, proc: Process) -> None:
        path = self._root / file
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            self._store.dispatch(
                T.WARNING, name, message=f"{name}: cannot read stdin file {file}: {exc}"
            )
            data = b""
        try:
            for start in range(0, len(data), WRITE_CHUNK):
                await proc.write_stdin(data[start : start + WRITE_CHUNK])
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                proc.close_stdin()

    async def send_console(self, name: str, data: bytes) -> str | None:
        """Write ``data`` to task ``name``'s console stdin.

        Returns:
            None on success, else why it was refused.
        """
        task = self._tasks.get(name)
        if task is None or task.stdin is None or not task.stdin.console:
            return f"{name} does not read the console (set `stdin: console`)"
        proc = self._procs.get(name)
        if proc is None:
            return f"{name} is not running"
        try:
            await asyncio.wait_for(proc.write_stdin(data), 5.0)
        except TimeoutError:
            return f"{name} is not reading its stdin"
        except OSError as exc:
            return f"{name} no longer reads its stdin ({exc})"
        return None

    async def close(self) -> None:
        """Stop every feed (paused producers are read again)."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        for producer in self.paused:
            proc = self._producer_procs.get(producer)
            if proc is not None:
                proc.resume_output()
        self.paused.clear()
        for pipe in self.pipes.values():
            await pipe.close()
        for feed in list(self._feeds):
            feed.cancel()


def _feeder(pipe: Pipe, stream: str | None) -> Callable[[str, bytes, int], None]:
    def on_line(line_stream: str, line: bytes, _run: int) -> None:
        if stream is None or line_stream == stream:
            pipe.push(line)

    return on_line
