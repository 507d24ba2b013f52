"""Which file changes count: include/ignore globs, default ignores and editor junk files.

Pure functions over relative POSIX paths, so every rule is unit-tested without a file system.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

DEFAULT_IGNORED_DIRS: Final = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "__pycache__",
        ".devster",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        ".tox",
        ".venv",
        ".idea",
    }
)
"""Directory names whose contents never count while ``default_ignores`` is on."""

JUNK_FILE: Final = re.compile(
    r"""^(?:
        \..*\.sw[a-z]          # vim swap files: .x.swp, .x.swo, .x.swx
      | 4913                   # vim's probe for write permission
      | .*~                    # backups: x~, vim's x.un~
      | \.\#.*                 # emacs lock files: .#x
      | \#.*\#                 # emacs auto-save: #x#
      | .*\.___jb_(?:tmp|old)___   # JetBrains safe-write temporaries
      | \.DS_Store
      | flycheck_.*
      | .*\.py[cod]
    )$""",
    re.VERBOSE,
)
"""File names of editor swap, probe, lock and backup files (and compiled Python)."""


@lru_cache(maxsize=512)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob: ``*`` and ``?`` stay inside one path segment, ``**`` spans segments.

    Args:
        pattern: A glob such as ``*.py``, ``src/**/*.ts`` or ``build/``.

    Returns:
        A regular expression matching whole relative POSIX paths.
    """
    text = pattern.strip().lstrip("/").rstrip("/") if pattern.strip() != "/" else ""
    if text.startswith("./"):
        text = text[2:]
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if text.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if text.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = text.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = text[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _matches(pattern: str, rel: str) -> bool:
    """A glob without ``/`` matches the name of the file or of any directory above it;
    one with ``/`` matches the path (or a directory above it) from the watched root."""
    regex = glob_regex(pattern)
    parts = rel.split("/")
    if "/" not in pattern.strip().strip("/"):
        return any(regex.match(part) for part in parts)
    return any(regex.match("/".join(parts[:n])) for n in range(1, len(parts) + 1))


@dataclass(frozen=True, slots=True)
class PathFilter:
    """Decides whether a changed path (relative to its watched root) counts."""

    include: tuple[str, ...] = ()
    """Only paths matching one of these globs count (empty: all)."""
    ignore: tuple[str, ...] = ()
    """Paths matching one of these globs never count."""
    default_ignores: bool = True
    """Also ignore :data:`DEFAULT_IGNORED_DIRS` and :data:`JUNK_FILE` names."""

    @classmethod
    def of(cls, include: Iterable[str], ignore: Iterable[str], default_ignores: bool) -> PathFilter:
        """Build a filter from configuration lists."""
        return cls(tuple(include), tuple(ignore), default_ignores)

    def ignored_dir(self, rel: str) -> bool:
        """Whether a directory (relative path) is skipped entirely (its walk is pruned)."""
        if not rel or rel == ".":
            return False
        parts = rel.split("/")
        if self.default_ignores and any(part in DEFAULT_IGNORED_DIRS for part in parts):
            return True
        return any(_matches(p, rel) for p in self.ignore if not _is_file_glob(p))

    def counts(self, rel: str, *others: str) -> bool:
        """Whether a change of ``rel`` counts.

        Args:
            rel: The path relative to the watched root (POSIX separators).
            *others: The same path relative to other bases (e.g. the project directory);
                ``ignore`` and ``include`` globs may match any of them.
        """
        rels = [r for r in (rel, *others) if r and r != "."]
        if not rels:
            return False
        if self.default_ignores:
            parts = rels[0].split("/")
            if any(part in DEFAULT_IGNORED_DIRS for part in parts[:-1]) or (
                parts[-1] in DEFAULT_IGNORED_DIRS or JUNK_FILE.match(parts[-1])
            ):
                return False
        if any(_matches(p, r) for p in self.ignore for r in rels):
            return False
        if self.include:
            return any(_matches(p, r) for p in self.include for r in rels)
        return True


def _is_file_glob(pattern: str) -> bool:
    """``*.pyc``-like patterns name files; they never prune a directory walk."""
    name = pattern.strip().rstrip("/").rsplit("/", 1)[-1]
    return "." in name and ("*" in name or "?" in name)


def relative(path: str, bases: Sequence[str]) -> str | None:
    """``path`` relative to the first of ``bases`` that contains it (POSIX), else None."""
    for base in bases:
        if path == base:
            return "."
        prefix = base.rstrip("/") + "/"
        if path.startswith(prefix):
            return path[len(prefix) :]
    return None
