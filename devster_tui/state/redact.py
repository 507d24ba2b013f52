"""Redaction of secret values: ``[redacted:NAME]`` in output chunks, texts and event data.

Why a stream redactor: a process writes chunks, not lines, and a value may arrive split
across two reads (``...pass`` + ``word...``).  :class:`StreamRedactor` holds back the few
bytes at the end of a chunk that could be the start of a value until the next chunk (or the
end of the stream) decides, so a split value is still replaced and no part of it is ever
stored.  The cost is bounded: each chunk is searched once per value with ``bytes.__contains__``
(C speed) and a regex runs only on chunks that hold a value; the tail check looks at fewer
bytes than the longest value, at the places where a value's first byte occurs.  With no
secrets configured nothing here runs at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


def redaction_label(name: str) -> str:
    """What a value is replaced with: ``[redacted:NAME]``."""
    return f"[redacted:{name}]"


class Redactor:
    """Replaces every known secret value with ``[redacted:NAME]``.

    Longer values win over shorter ones that they contain, so a value is never half
    replaced.  Empty values are ignored (there is nothing to find).
    """

    __slots__ = ("_bytes_labels", "_bytes_re", "_text_labels", "_text_re", "_values")

    def __init__(self, secrets: Mapping[str, str]) -> None:
        """Build the matchers for ``secrets`` (name -> value)."""
        pairs = sorted(
            ((name, value) for name, value in secrets.items() if value),
            key=lambda item: (-len(item[1].encode("utf-8", "surrogateescape")), item[0]),
        )
        self._text_labels = {value: redaction_label(name) for name, value in reversed(pairs)}
        self._bytes_labels = {
            value.encode("utf-8", "surrogateescape"): redaction_label(name).encode()
            for name, value in reversed(pairs)
        }
        self._values: tuple[bytes, ...] = tuple(self._bytes_labels)
        texts = sorted(self._text_labels, key=len, reverse=True)
        blobs = sorted(self._bytes_labels, key=len, reverse=True)
        self._text_re = re.compile("|".join(map(re.escape, texts))) if texts else None
        self._bytes_re = re.compile(b"|".join(map(re.escape, blobs))) if blobs else None

    @property
    def empty(self) -> bool:
        """Whether there is nothing to redact."""
        return not self._values

    @property
    def longest(self) -> int:
        """Length in bytes of the longest value (0 when empty)."""
        return max(map(len, self._values), default=0)

    def redact_text(self, value: str) -> str:
        """``value`` with every secret replaced."""
        pattern = self._text_re
        if pattern is None or not any(v in value for v in self._text_labels):
            return value
        labels = self._text_labels
        return pattern.sub(lambda m: labels[m.group()], value)

    def redact_bytes(self, data: bytes) -> bytes:
        """``data`` with every secret replaced (a whole buffer, not a stream piece)."""
        pattern = self._bytes_re
        if pattern is None or not any(v in data for v in self._values):
            return data
        labels = self._bytes_labels
        return pattern.sub(lambda m: labels[m.group()], data)

    def redact_data(self, value: Any) -> Any:
        """A JSON-like structure with every string (keys included) redacted; containers are
        copied only when something in them changed."""
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, Mapping):
            out = {self.redact_data(k): self.redact_data(v) for k, v in value.items()}
            same = len(out) == len(value) and all(k in value and out[k] is value[k] for k in out)
            return value if same else out
        if isinstance(value, list | tuple):
            items = [self.redact_data(v) for v in value]
            if all(a is b for a, b in zip(items, value, strict=True)):
                return value
            return items if isinstance(value, list) else tuple(items)
        if isinstance(value, bytes):
            return self.redact_bytes(value)
        return value

    def stream(self) -> StreamRedactor:
        """A redactor for one stream of chunks."""
        return StreamRedactor(self)

    # used by StreamRedactor

    def _split(self, data: bytes) -> tuple[bytes, bytes]:
        """``(redacted part that is final, raw tail held back)`` for one stream buffer."""
        hold = len(data)
        size = hold
        for value in self._values:
            first = value[:1]
            at = data.find(first, max(0, size - len(value) + 1))
            while 0 <= at < hold:
                if value.startswith(data[at:]):
                    hold = at
                    break
                at = data.find(first, at + 1)
        pattern = self._bytes_re
        if pattern is None or not any(v in data for v in self._values):
            return data[:hold], data[hold:]
        labels = self._bytes_labels
        out: list[bytes] = []
        pos = 0
        for match in pattern.finditer(data):
            start, end = match.span()
            if end > hold:
                # A value that reaches into the held tail is decided with the next chunk.
                hold = min(hold, start)
                break
            out.append(data[pos:start])
            out.append(labels[match.group()])
            pos = end
        out.append(data[pos:hold])
        return b"".join(out), data[hold:]


class StreamRedactor:
    """Redacts one stream of chunks, including values split across chunks."""

    __slots__ = ("_held", "_redactor")

    def __init__(self, redactor: Redactor) -> None:
        """Create a stream redactor over ``redactor``'s values."""
        self._redactor = redactor
        self._held = b""

    @property
    def held(self) -> int:
        """Bytes held back (they could begin a value)."""
        return len(self._held)

    def feed(self, chunk: bytes) -> bytes:
        """Take a chunk; return what may be stored now (possibly empty)."""
        data = self._held + chunk if self._held else chunk
        out, self._held = self._redactor._split(data)
        return out

    def flush(self) -> bytes:
        """End of the stream: the held bytes, redacted."""
        held, self._held = self._held, b""
        return self._redactor.redact_bytes(held)
