"""The on-disk event log: JSONL segments that survive ``kill -9``, and replay.

Why JSONL segments rather than SQLite: events are appended, never updated, and read back
in order, which is exactly what an append-only text file does best.  One ``os.write`` of
one complete line per event (``O_APPEND``, no user-space buffer) means a killed devster
loses at most the record being written, and a torn record can only be the *last* line of a
segment, which :func:`read_events` skips with a warning.  The files are greppable and
``tail -f``-able, need no schema migrations and no extra dependency, and a reader never
takes a lock the engine waits on.  SQLite would give durability through its journal, but
at the cost of a transaction per event (or batching that loses the tail anyway) and of an
opaque file.  Engine lifecycle events are ``fsync``'d so a crash of the machine keeps
the start and the end of every run.

Layout: ``DIR/events-000001.jsonl``, ``events-000002.jsonl`` ...  Each :class:`EventLog`
starts a new segment (never appends to an older one, whose last record may be torn) and
rolls over to the next at ``segment_bytes``.  The directory is 0700, files 0600.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from devster_tui.state.events import Event, T
from devster_tui.state.model import EngineState
from devster_tui.state.reducer import reduce

log = logging.getLogger(__name__)

SEGMENT_GLOB: Final = "events-*.jsonl"
"""Names of segment files inside a log directory."""

_SEGMENT_RE: Final = re.compile(r"^events-(\d+)\.jsonl$")

SYNC_TYPES: Final = frozenset({T.ENGINE_STARTED, T.ENGINE_STOPPING, T.ENGINE_STOPPED})
"""Event types after which the segment is ``fsync``'d."""


def segments(directory: Path) -> list[Path]:
    """The segment files of a log directory, oldest first (by number)."""
    found: list[tuple[int, Path]] = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    for entry in entries:
        match = _SEGMENT_RE.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    return [path for _, path in sorted(found)]


def _segment_number(path: Path) -> int:
    match = _SEGMENT_RE.match(path.name)
    return int(match.group(1)) if match else 0


class EventLog:
    """Appends events to JSONL segments, one ``write`` per record."""

    def __init__(self, directory: Path, segment_bytes: int = 16 * 2**20) -> None:
        """Open a new segment in ``directory`` (created 0700 if missing).

        Args:
            directory: The log directory (e.g. ``.devster/events``).
            segment_bytes: Size after which the next record goes to a new segment.

        Raises:
            OSError: when the directory or the segment cannot be created.
        """
        self._directory = directory
        self._segment_bytes = max(1, segment_bytes)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        self._number = max((_segment_number(p) for p in segments(directory)), default=0)
        self._fd: int | None = None
        self._size = 0
        self._path = directory / "events-000000.jsonl"
        self._open_next()

    def _open_next(self) -> None:
        self._close_fd()
        while True:
            self._number += 1
            path = self._directory / f"events-{self._number:06d}.jsonl"
            try:
                fd = os.open(
                    path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600
                )
            except FileExistsError:
                continue  # another writer took this number; use the next one
            break
        os.fchmod(fd, 0o600)
        self._fd = fd
        self._size = 0
        self._path = path

    @property
    def path(self) -> Path:
        """The segment currently written."""
        return self._path

    @property
    def directory(self) -> Path:
        """The log directory."""
        return self._directory

    def append(self, event: Event) -> None:
        """Write one event as one JSON line.

        Raises:
            OSError: when the write fails (disk full ...); the log stays usable.
            ValueError: when the log is closed, or the payload is circular.
        """
        if self._fd is None:
            raise ValueError("event log is closed")
        # default=str: a payload value JSON cannot express (a Path, an enum) is recorded as
        # its text instead of losing the whole event.
        text = json.dumps(event.to_dict(), separators=(",", ":"), ensure_ascii=False, default=str)
        record = (text + "\n").encode("utf-8", "surrogatepass")
        if self._size > 0 and self._size + len(record) > self._segment_bytes:
            self._open_next()
        fd = self._fd
        assert fd is not None
        view = memoryview(record)
        while view:
            written = os.write(fd, view)
            self._size += written
            view = view[written:]
        if event.type in SYNC_TYPES:
            os.fsync(fd)

    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def close(self) -> None:
        """Sync and close the current segment (idempotent)."""
        self._close_fd()


def read_events(path: Path) -> tuple[list[Event], list[str]]:
    """Read a segment file, or every segment of a log directory in order.

    Never raises for damaged content: a torn last record (no newline, unparseable) and
    garbage lines in the middle are skipped, each with a warning, and so are gaps in the
    sequence numbers within one engine run.

    Args:
        path: A segment file or a log directory.

    Returns:
        ``(events, warnings)``.
    """
    warnings: list[str] = []
    events: list[Event] = []
    if path.is_dir():
        files = segments(path)
        if not files:
            warnings.append(f"{path}: no event log segments ({SEGMENT_GLOB})")
    else:
        files = [path]
    last_seq: int | None = None
    for file in files:
        try:
            raw = file.read_bytes()
        except OSError as exc:
            warnings.append(f"{file}: cannot read: {exc.strerror or exc}")
            continue
        chunks = raw.split(b"\n")
        torn = chunks.pop()  # after the last newline: empty unless the last record is torn
        for number, chunk in enumerate(chunks, start=1):
            if not chunk.strip():
                continue
            event = _parse(chunk)
            if event is None:
                warnings.append(f"{file.name}:{number}: garbled record skipped")
                continue
            last_seq = _check_gap(event, last_seq, file.name, number, warnings)
            events.append(event)
        if torn.strip():
            event = _parse(torn)
            if event is None:
                warnings.append(
                    f"{file.name}:{len(chunks) + 1}: torn last record skipped "
                    f"({len(torn)} bytes, no newline)"
                )
            else:
                last_seq = _check_gap(event, last_seq, file.name, len(chunks) + 1, warnings)
                events.append(event)
    return events, warnings


def _parse(chunk: bytes) -> Event | None:
    try:
        # surrogatepass: the writer encodes lone surrogates (from surrogateescape'd paths).
        return Event.from_json(chunk.decode("utf-8", "surrogatepass"))
    except (ValueError, TypeError, RecursionError):
        return None


def _check_gap(
    event: Event, last_seq: int | None, name: str, number: int, warnings: list[str]
) -> int:
    restarted = event.type == T.ENGINE_STARTED
    if last_seq is not None and not restarted and event.seq != last_seq + 1:
        if event.seq > last_seq + 1:
            warnings.append(f"{name}:{number}: events {last_seq + 1}..{event.seq - 1} are missing")
        else:
            warnings.append(f"{name}:{number}: sequence goes back from {last_seq} to {event.seq}")
    return event.seq


def replay(events: Iterable[Event]) -> EngineState:
    """Fold events into state with the same reducer the engine uses.

    Args:
        events: Events in order (e.g. from :func:`read_events`).

    Returns:
        The state after the last event (a fresh engine state for no events).
    """
    state = EngineState()
    for event in events:
        state = reduce(state, event)
    return state
