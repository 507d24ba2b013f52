"""Line splitting of raw output chunks, with a carried partial line and a cap on line length.

Why our own splitter: processes write chunks, not lines.  A line may span many chunks, a
chunk holds many lines, a line may be 10 MiB long or never end.  Splitting with
``bytes.split`` per chunk keeps the per-line cost at what CPython's C code does, and the cap
(``max_line``) keeps memory bounded: a longer line is cut into pieces that are flagged as
*partial* (they have no newline of their own).  Only ``\\n`` ends a line; ``\\r`` stays in
the line so a client can collapse carriage-return progress bars.
"""

from __future__ import annotations

from typing import Final

DEFAULT_MAX_LINE: Final = 1 * 2**20
"""Longest line kept in one piece (bytes)."""


class LineSplitter:
    """Splits a stream of chunks into lines; one splitter per stream.

    Not thread-safe; feed it from one thread (the event loop).
    """

    __slots__ = ("_parts", "_size", "max_line")

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        """Create a splitter.

        Args:
            max_line: Longest piece returned; longer lines are cut (at least 1).
        """
        self.max_line = max(1, max_line)
        """Longest piece returned, in bytes."""
        self._parts: list[bytes] = []
        self._size = 0

    @property
    def pending(self) -> bytes:
        """The bytes of the unfinished line (not yet returned)."""
        return b"".join(self._parts)

    def feed(self, data: bytes) -> tuple[list[bytes], list[int] | None]:
        """Split one chunk.

        Args:
            data: Raw bytes as read from the stream.

        Returns:
            ``(lines, cut)``: the finished lines without their newline, in order, and the
            indexes into ``lines`` of pieces that are partial (cut at ``max_line``), or None
            when there are none (the common case).
        """
        lines = data.split(b"\n")
        tail = lines.pop()
        parts = self._parts
        if parts and lines:
            parts.append(lines[0])
            lines[0] = b"".join(parts)
            parts.clear()
            self._size = 0
        if tail:
            parts.append(tail)
            self._size += len(tail)
        cut: list[int] | None = None
        limit = self.max_line
        if lines and max(map(len, lines)) > limit:
            lines, cut = _cut(lines, limit)
        if self._size > limit:
            # Keep 1..limit bytes pending, so a newline right after a cut does not make an
            # extra empty line.
            pending = b"".join(parts)
            parts.clear()
            end = (len(pending) - 1) // limit * limit
            if cut is None:
                cut = []
            for start in range(0, end, limit):
                cut.append(len(lines))
                lines.append(pending[start : start + limit])
            rest = pending[end:]
            self._size = len(rest)
            if rest:
                parts.append(rest)
        return lines, cut

    def flush(self) -> bytes | None:
        """End of stream: the unfinished line, if any (a *partial* line), else None."""
        if not self._parts:
            return None
        pending = b"".join(self._parts)
        self._parts.clear()
        self._size = 0
        return pending


def _cut(lines: list[bytes], limit: int) -> tuple[list[bytes], list[int]]:
    """Cut every line longer than ``limit``; all pieces but a line's last are partial."""
    out: list[bytes] = []
    cut: list[int] = []
    for line in lines:
        if len(line) <= limit:
            out.append(line)
            continue
        for start in range(0, len(line), limit):
            if start + limit < len(line):
                cut.append(len(out))
            out.append(line[start : start + limit])
    return out, cut
