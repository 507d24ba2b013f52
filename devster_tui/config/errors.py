"""Configuration errors that point at the exact place to fix: ``FILE:LINE:COL: key.path: msg``.

Import-light: no pydantic here, so the CLI can format errors cheaply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

KeyPath = tuple[str | int, ...]
"""A path into the document: mapping keys and list indexes, e.g. ``("tasks", "api", "cmd")``."""


@dataclass(frozen=True, slots=True)
class Position:
    """A 1-based line and column in the project file."""

    line: int
    """1-based line."""
    col: int
    """1-based column."""


class SourceMap:
    """Positions of every key and value of a loaded document, by key path.

    For a mapping entry, ``key(path)`` is where the key is written and ``value(path)`` where
    its value starts; for a list item both are the item's position.
    """

    def __init__(self) -> None:
        self._keys: dict[KeyPath, Position] = {}
        self._values: dict[KeyPath, Position] = {}

    def set(self, path: KeyPath, key: Position | None, value: Position) -> None:
        """Record the positions for ``path``."""
        if key is not None:
            self._keys[path] = key
        self._values[path] = value

    def key(self, path: KeyPath) -> Position | None:
        """Where the key of ``path`` is written (or the nearest enclosing one)."""
        return self._lookup(self._keys, path) or self._lookup(self._values, path)

    def value(self, path: KeyPath) -> Position | None:
        """Where the value of ``path`` starts (or the nearest enclosing one)."""
        return self._lookup(self._values, path)

    @staticmethod
    def _lookup(table: dict[KeyPath, Position], path: KeyPath) -> Position | None:
        probe = tuple(path)
        while True:
            found = table.get(probe)
            if found is not None:
                return found
            if not probe:
                return None
            probe = probe[:-1]


def format_path(path: KeyPath) -> str:
    """``("tasks", "api", "cmd", 0)`` -> ``tasks.api.cmd[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            if text == "" or any(c in text for c in ".[] "):
                text = f'"{text}"'
            out += ("." if out else "") + text
    return out


@dataclass(frozen=True, slots=True)
class ConfigError:
    """One problem in a project file."""

    file: str
    """The file's path as the user named it."""
    line: int
    """1-based line (0 when unknown)."""
    col: int
    """1-based column (0 when unknown)."""
    path: KeyPath
    """Key path, e.g. ``("tasks", "api", "depends_on")``; empty for file-level errors."""
    message: str
    """What is wrong, and how to fix it when that is known."""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        key = format_path(self.path)
        return f"{where}: {key}: {self.message}" if key else f"{where}: {self.message}"


class ConfigErrors(Exception):
    """Validation failed; carries every error found in the file."""

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.file, e.line, e.col, e.message))
        """All errors, in file order."""
        super().__init__("\n".join(str(e) for e in self.errors))
