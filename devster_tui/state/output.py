"""The output store: per-task rings of recent lines plus byte-exact, rotated log files.

Why not one event per line: a busy task prints hundreds of thousands of lines a second, and
an event per line would cost an object, a reducer pass and a subscriber call each.  Instead
readers hand raw chunks to :meth:`OutputStore.append` (the hot path: one ``bytes.split``,
a few C-level ``deque.extend`` calls and one ``os.write`` per chunk), and clients read what
is new since their cursor.  Every line has an absolute index per view (``stdout``,
``stderr`` and the merged ``both``), never reused, so a cursor stays valid while old lines
fall out of the bounded in-memory window; :class:`Line` objects are built only when read.

On disk each task and stream gets ``TASK.stdout.log`` / ``TASK.stderr.log`` holding the
raw chunks exactly as read (no markers, no cutting), rotated at ``max_bytes`` into ``.1`` ..
``.N``: concatenating ``.N`` .. ``.1`` and the current file gives the bytes back.  The one
exception: secret values are stored as ``[redacted:NAME]`` (see ``set_redactor``).  Files
are written unbuffered, so what was read survives a ``kill -9`` of devster.

Not thread-safe: feed and read it from the event loop thread.
"""

from __future__ import annotations

import logging
import os
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice, repeat
from pathlib import Path
from typing import Final

from devster_tui.state.lines import DEFAULT_MAX_LINE, LineSplitter
from devster_tui.state.redact import Redactor, StreamRedactor

log = logging.getLogger(__name__)

LineCallback = Callable[[str, bytes, int], None]
"""Called as ``fn(stream, line, run)`` for every line of a task (see ``subscribe_lines``)."""

VIEWS: Final = ("stdout", "stderr", "both")
"""The views a client can read."""

_SAFE: Final = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@+=-_")


@dataclass(frozen=True, slots=True)
class Line:
    """One line as read by a client."""

    n: int
    """Absolute index in the view asked for (0-based, never reused)."""
    stream: str
    """``stdout``, ``stderr`` or ``marker``."""
    data: bytes
    """Raw bytes without the trailing newline (``\\r`` kept, invalid UTF-8 kept)."""
    run: int
    """Which run of the task produced it."""
    partial: bool
    """The line has no newline of its own: the last line at EOF, or a piece of a line
    longer than ``max_line``."""

    @property
    def text(self) -> str:
        """The line decoded as UTF-8, invalid bytes shown as U+FFFD."""
        return self.data.decode("utf-8", "replace")


def log_file_name(task: str, stream: str) -> str:
    """The log file name for a task's stream: ``api.stdout.log``; unsafe bytes %-escaped.

    Args:
        task: Task name (``web@host-1`` is kept; ``/``, spaces and a leading dot are escaped).
        stream: ``stdout`` or ``stderr``.
    """
    raw = task.encode("utf-8", "surrogatepass")
    safe = "".join(
        chr(b) if b in _SAFE or (b == 0x2E and i > 0) else f"%{b:02X}" for i, b in enumerate(raw)
    )
    return f"{safe or '%'}.{stream}.log"


class _Ring:
    """A bounded window of lines with absolute indexes, runs and partial flags."""

    __slots__ = ("budget", "lines", "maxlen", "nbytes", "partials", "runs", "tags", "total")

    def __init__(self, maxlen: int, budget: int, tagged: bool) -> None:
        self.maxlen = maxlen
        self.budget = budget
        self.lines: deque[bytes] = deque(maxlen=maxlen)
        self.tags: deque[str] | None = deque(maxlen=maxlen) if tagged else None
        self.total = 0
        """Lines ever added; the index of the next line."""
        self.nbytes = 0
        """Payload bytes currently held."""
        self.runs: list[tuple[int, int]] = []
        """``(first index, run)`` for every change of run, oldest first."""
        self.partials: set[int] = set()
        """Indexes of partial lines (rare)."""

    @property
    def first(self) -> int:
        return self.total - len(self.lines)

    def extend(
        self, lines: list[bytes], size: int, run: int, cut: list[int] | None, tag: str
    ) -> None:
        runs = self.runs
        if not runs or runs[-1][1] != run:
            runs.append((self.total, run))
        if cut:
            base = self.total
            self.partials.update([base + i for i in cut])
        dq = self.lines
        count = len(lines)
        over = len(dq) + count - self.maxlen
        if over > 0:
            if over >= len(dq):
                self.nbytes = 0
                if count > self.maxlen:
                    lines = lines[-self.maxlen :]
                    size = sum(map(len, lines))
            else:
                self.nbytes -= sum(map(len, islice(dq, 0, over)))
        dq.extend(lines)
        if self.tags is not None:
            self.tags.extend(repeat(tag, len(lines)))
        self.total += count
        self.nbytes += size
        if self.nbytes > self.budget:
            self._shrink()
        if over > 0 or self.nbytes > self.budget:
            self._prune()

    def _shrink(self) -> None:
        dq = self.lines
        tags = self.tags
        while self.nbytes > self.budget and len(dq) > 1:
            self.nbytes -= len(dq.popleft())
            if tags is not None:
                tags.popleft()
        self._prune()

    def _prune(self) -> None:
        first = self.first
        runs = self.runs
        drop = 0
        while drop + 1 < len(runs) and runs[drop + 1][0] <= first:
            drop += 1
        if drop:
            del runs[:drop]
        if len(self.partials) > 2 * len(self.lines) + 64:
            self.partials = {n for n in self.partials if n >= first}

    def read_raw(self, start: int, limit: int, stream: str) -> tuple[int, list[bytes], list[str]]:
        first = self.first
        start = max(start, first)
        stop = min(self.total, start + max(0, limit))
        if start >= stop:
            return start, [], []
        datas = list(islice(self.lines, start - first, stop - first))
        if self.tags is None:
            return start, datas, [stream] * len(datas)
        return start, datas, list(islice(self.tags, start - first, stop - first))

    def read(self, start: int, limit: int, stream: str) -> list[Line]:
        first = self.first
        start = max(start, first)
        stop = min(self.total, start + max(0, limit))
        if start >= stop:
            return []
        datas = islice(self.lines, start - first, stop - first)
        tags: Iterator[str] = (
            repeat(stream) if self.tags is None else islice(self.tags, start - first, stop - first)
        )
        runs = self.runs
        r = max(0, bisect_right(runs, start, key=lambda item: item[0]) - 1)
        next_change = runs[r + 1][0] if r + 1 < len(runs) else None
        run = runs[r][1] if runs else 0
        partials = self.partials
        out: list[Line] = []
        n = start
        for data, tag in zip(datas, tags, strict=False):
            while next_change is not None and n >= next_change:
                r += 1
                run = runs[r][1]
                next_change = runs[r + 1][0] if r + 1 < len(runs) else None
            out.append(Line(n, tag, data, run, n in partials))
            n += 1
        return out


class _LogFile:
    """One rotated, unbuffered, owner-only log file."""

    __slots__ = ("backups", "broken", "fd", "max_bytes", "path", "size")

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max(1, max_bytes)
        self.backups = max(0, backups)
        self.fd: int | None = None
        self.size = 0
        self.broken = False

    def _open(self) -> int:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        os.fchmod(fd, 0o600)
        self.size = os.fstat(fd).st_size
        self.fd = fd
        return fd

    def _rotate(self) -> None:
        self.close()
        base = str(self.path)
        if self.backups == 0:
            os.unlink(base)
        else:
            for i in range(self.backups - 1, 0, -1):
                older = f"{base}.{i}"
                if os.path.exists(older):
                    os.replace(older, f"{base}.{i + 1}")
            os.replace(base, f"{base}.1")

    def write(self, data: bytes) -> None:
        if self.broken:
            return
        try:
            fd = self.fd if self.fd is not None else self._open()
            view = memoryview(data)
            while view:
                room = self.max_bytes - self.size
                if room <= 0:
                    self._rotate()
                    fd = self._open()
                    continue
                written = os.write(fd, view[:room])
                self.size += written
                view = view[written:]
        except OSError as exc:
            self.broken = True
            log.warning("output log %s disabled: %s", self.path, exc)

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)


class _Channel:
    """One stream of one task: splitter, ring and log file."""

    __slots__ = ("log", "redact", "ring", "run", "splitter", "stream")

    def __init__(
        self,
        stream: str,
        ring: _Ring,
        splitter: LineSplitter,
        logfile: _LogFile | None,
        redact: StreamRedactor | None = None,
    ) -> None:
        self.stream = stream
        self.ring = ring
        self.splitter = splitter
        self.log = logfile
        self.run = 0
        self.redact = redact


class _Task:
    __slots__ = ("both", "nbytes", "nlines", "stderr", "stdout", "subs")

    def __init__(self, stdout: _Channel, stderr: _Channel, both: _Ring) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.both = both
        self.nlines = 0
        self.nbytes = 0
        self.subs: list[LineCallback] = []


class OutputStore:
    """Per-task output: in-memory windows for reading by cursor, log files on disk."""

    def __init__(
        self,
        directory: Path | None,
        memory_lines: int = 10000,
        max_bytes: int = 10 * 2**20,
        backups: int = 3,
        max_line: int = DEFAULT_MAX_LINE,
        *,
        memory_bytes: int = 8 * 2**20,
    ) -> None:
        """Create a store.

        Args:
            directory: Where ``TASK.stdout.log`` / ``TASK.stderr.log`` go (created 0700);
                None keeps output in memory only.
            memory_lines: Lines kept in memory per view (stdout, stderr, both) per task.
            max_bytes: Size at which a log file is rotated.
            backups: Rotated files kept (``.1`` .. ``.N``).
            max_line: Longest line kept in one piece in memory; longer lines are cut into
                partial pieces (the log file keeps them whole).
            memory_bytes: Payload bytes kept in memory per view per task (bounds memory for
                very long lines); the newest line is always kept.
        """
        self._directory = directory
        self._memory_lines = max(1, memory_lines)
        self._memory_bytes = max(1, memory_bytes)
        self._max_bytes = max_bytes
        self._backups = backups
        self._max_line = max_line
        self._tasks: dict[str, _Task] = {}
        self._redactor: Redactor | None = None
        if directory is not None:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(directory, 0o700)

    def _new_task(self, task: str) -> _Task:
        def channel(stream: str) -> _Channel:
            logfile = None
            if self._directory is not None:
                path = self._directory / log_file_name(task, stream)
                logfile = _LogFile(path, self._max_bytes, self._backups)
            ring = _Ring(self._memory_lines, self._memory_bytes, tagged=False)
            redact = self._redactor.stream() if self._redactor is not None else None
            return _Channel(stream, ring, LineSplitter(self._max_line), logfile, redact)

        both = _Ring(self._memory_lines, self._memory_bytes, tagged=True)
        entry = self._tasks[task] = _Task(channel("stdout"), channel("stderr"), both)
        return entry

    def append(self, task: str, stream: str, data: bytes, run: int = 0) -> None:
        """Take one raw chunk read from a task's stream (the hot path).

        Args:
            task: Task name.
            stream: ``stdout`` or ``stderr``.
            data: The bytes exactly as read.
            run: Which run of the task produced them.

        Raises:
            ValueError: for another stream name.
        """
        entry = self._tasks.get(task)
        if entry is None:
            entry = self._new_task(task)
        if stream == "stdout":
            channel = entry.stdout
        elif stream == "stderr":
            channel = entry.stderr
        else:
            raise ValueError(f"unknown stream {stream!r}")
        if not data:
            return
        entry.nbytes += len(data)
        channel.run = run
        if channel.redact is not None:
            data = channel.redact.feed(data)
            if not data:
                return
        if channel.log is not None:
            channel.log.write(data)
        lines, cut = channel.splitter.feed(data)
        if lines:
            self._push(entry, channel, lines, cut, run)

    def _push(
        self, entry: _Task, channel: _Channel, lines: list[bytes], cut: list[int] | None, run: int
    ) -> None:
        size = sum(map(len, lines))
        stream = channel.stream
        channel.ring.extend(lines, size, run, cut, stream)
        entry.both.extend(lines, size, run, cut, stream)
        entry.nlines += len(lines)
        if entry.subs:
            for fn in tuple(entry.subs):
                for line in lines:
                    try:
                        fn(stream, line, run)
                    except Exception:
                        log.exception("output line subscriber %r failed", fn)

    def finish(self, task: str, stream: str) -> None:
        """End of file on a stream: keep an unfinished last line as a partial line.

        Args:
            task: Task name.
            stream: ``stdout`` or ``stderr``.
        """
        entry = self._tasks.get(task)
        if entry is None or stream not in ("stdout", "stderr"):
            return
        channel = entry.stdout if stream == "stdout" else entry.stderr
        if channel.redact is not None:
            held = channel.redact.flush()
            if held:
                if channel.log is not None:
                    channel.log.write(held)
                lines, cut = channel.splitter.feed(held)
                if lines:
                    self._push(entry, channel, lines, cut, channel.run)
        last = channel.splitter.flush()
        if last is not None:
            self._push(entry, channel, [last], [0], channel.run)

    def set_redactor(self, redactor: Redactor | None) -> None:
        """Store and show every secret value of ``redactor`` as ``[redacted:NAME]`` from now
        on, in memory and in the log files, including values split across chunks.

        This is the one exception to byte-exact output.  Bytes at the end of a chunk that
        could begin a value wait for the next chunk (or the end of the stream).

        Args:
            redactor: The values to redact (None or empty: stop redacting).
        """
        if redactor is not None and redactor.empty:
            redactor = None
        self._redactor = redactor
        for entry in self._tasks.values():
            for channel in (entry.stdout, entry.stderr):
                channel.redact = redactor.stream() if redactor is not None else None

    def mark(self, task: str, text: str, run: int) -> None:
        """Add a ``marker`` line (e.g. ``── run 3 ──``) to the merged view only.

        Args:
            task: Task name.
            text: The marker text.
            run: The run it introduces.
        """
        entry = self._tasks.get(task)
        if entry is None:
            entry = self._new_task(task)
        data = text.encode("utf-8", "replace")
        entry.both.extend([data], len(data), run, None, "marker")

    def _ring(self, task: str, view: str) -> _Ring | None:
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r} (expected one of {', '.join(VIEWS)})")
        entry = self._tasks.get(task)
        if entry is None:
            return None
        if view == "both":
            return entry.both
        return entry.stdout.ring if view == "stdout" else entry.stderr.ring

    def read(self, task: str, view: str, start: int, limit: int) -> list[Line]:
        """Lines from absolute index ``start`` on (or from the oldest still held).

        Args:
            task: Task name.
            view: ``stdout``, ``stderr`` or ``both``.
            start: Absolute index of the first line wanted (a client's cursor).
            limit: At most this many lines.

        Returns:
            The lines, oldest first; empty when there is nothing at or after ``start``.

        Raises:
            ValueError: for an unknown view.
        """
        ring = self._ring(task, view)
        if ring is None:
            return []
        return ring.read(start, limit, view)

    def read_raw(
        self, task: str, view: str, start: int, limit: int
    ) -> tuple[int, list[bytes], list[str]]:
        """Like :meth:`read` without building :class:`Line` objects: the fast path for
        clients that copy output in bulk (the headless printer).

        Returns:
            ``(first index returned, line payloads, stream tags)``; the tags are ``stdout``,
            ``stderr`` or ``marker``.
        """
        ring = self._ring(task, view)
        if ring is None:
            return start, [], []
        return ring.read_raw(start, limit, view)

    def end(self, task: str, view: str) -> int:
        """Absolute index one past the newest line of the view (0 for an unknown task)."""
        ring = self._ring(task, view)
        return 0 if ring is None else ring.total

    def first(self, task: str, view: str) -> int:
        """Absolute index of the oldest line still in memory."""
        ring = self._ring(task, view)
        return 0 if ring is None else ring.first

    def tail(self, task: str, view: str, count: int) -> list[Line]:
        """The newest ``count`` lines of the view, oldest first."""
        ring = self._ring(task, view)
        if ring is None or count <= 0:
            return []
        return ring.read(ring.total - count, count, view)

    def log_path(self, task: str, stream: str) -> Path | None:
        """Where the task's stream is logged (it may not exist yet), or None in memory mode."""
        if self._directory is None:
            return None
        return self._directory / log_file_name(task, stream)

    def stats(self, task: str) -> tuple[int, int]:
        """``(lines, bytes)`` received from the task so far, both streams, all runs."""
        entry = self._tasks.get(task)
        return (0, 0) if entry is None else (entry.nlines, entry.nbytes)

    def subscribe_lines(self, task: str, fn: LineCallback) -> Callable[[], None]:
        """Call ``fn(stream, line, run)`` for every line of ``task`` from now on.

        Lines are delivered as the ring stores them (pieces of over-long lines included);
        a failing callback is logged and does not disturb the store.

        Returns:
            A function that unsubscribes ``fn``.
        """
        entry = self._tasks.get(task)
        if entry is None:
            entry = self._new_task(task)
        entry.subs.append(fn)

        def unsubscribe() -> None:
            if fn in entry.subs:
                entry.subs.remove(fn)

        return unsubscribe

    def close(self) -> None:
        """Close the log files (they reopen if more output arrives)."""
        for entry in self._tasks.values():
            for channel in (entry.stdout, entry.stderr):
                if channel.log is not None:
                    channel.log.close()
