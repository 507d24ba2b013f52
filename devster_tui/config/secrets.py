"""Secret references: where ``${secret:NAME}`` may be written, and the resolved values.

Why a fixed list of places: a command line (``cmd``, an argv, a health or stop command,
anything a layer turns into one) is readable by every user of the machine through ``ps``
and ``/proc``, so a secret may only travel in an environment value or as a layer credential
(an ssh key passphrase).  The loader checks every ``${secret:...}`` of the file against
that list and against the declared ``secrets:`` before anything starts; the engine
substitutes the values only when it builds a process environment.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from devster_tui.config.errors import ConfigError, KeyPath, SourceMap

SECRET_REF = re.compile(r"\$\{secret:([^}]*)\}")
"""A ``${secret:NAME}`` reference (group 1: the name as written)."""

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")

_ALLOWED: tuple[tuple[str | type[int] | None, ...], ...] = (
    ("tasks", None, "env", None),
    ("environments", None, "env", None),
    ("environments", None, "layers", int, "docker", "env", None),
    ("environments", None, "layers", int, "ssh", "passphrase"),
    ("hosts", None, "ssh", "passphrase"),
)
"""Key paths where a reference may appear (None: any key; ``int``: any list index)."""


def allowed_path(path: KeyPath) -> bool:
    """Whether a ``${secret:...}`` may be written at ``path`` (env values, passphrases)."""
    for pattern in _ALLOWED:
        if len(pattern) != len(path):
            continue
        for want, part in zip(pattern, path, strict=True):
            if want is None:
                continue
            if want is int:
                if not isinstance(part, int):
                    break
            elif want != part:
                break
        else:
            return True
    return False


def references(text: str) -> list[str]:
    """The secret names referenced in ``text``, as written."""
    if "${secret:" not in text:
        return []
    return [m.group(1) for m in SECRET_REF.finditer(text)]


def _strings(data: Any, path: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    if isinstance(data, Mapping):
        for key, value in data.items():
            yield from _strings(value, (*path, key))
    elif isinstance(data, list | tuple):
        for index, value in enumerate(data):
            yield from _strings(value, (*path, index))
    elif isinstance(data, str) and "${secret:" in data:
        yield path, data


def check_references(
    data: Any,
    declared: Collection[str],
    source_map: SourceMap | None,
    file: str,
) -> list[ConfigError]:
    """Every misplaced, malformed or unknown ``${secret:...}`` of a project document.

    Args:
        data: The document as loaded (dicts, lists, strings), keys spelled as in the file.
        declared: The names under ``secrets:``.
        source_map: Positions (None: line 0).
        file: The file name for the errors.

    Returns:
        One error per bad reference, at the position of its value.
    """
    errors: list[ConfigError] = []
    for path, text in _strings(data, ()):
        pos = source_map.value(path) if source_map is not None else None
        line, col = (pos.line, pos.col) if pos is not None else (0, 0)
        for name in references(text):
            ref = f"${{secret:{name}}}"
            if _NAME.fullmatch(name) is None:
                message = f"invalid secret reference {ref!r}: expected ${{secret:NAME}}"
            elif not allowed_path(path):
                message = (
                    f"{ref} cannot be used here: secrets may only be used in "
                    "env values and ssh passphrases, because a command, its arguments and "
                    "probes end up on a command line that every user of the machine can read "
                    f'(ps, /proc); pass it in env (env: {{VAR: "{ref}"}}) and read $VAR'
                )
            elif name not in declared:
                message = f"unknown secret {name!r}" + _hint(name, declared)
            else:
                continue
            errors.append(ConfigError(file, line, col, path, message))
    return errors


def _hint(name: str, declared: Collection[str]) -> str:
    close = difflib.get_close_matches(name, sorted(declared), n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    if declared:
        return f"; declared secrets: {', '.join(sorted(declared))}"
    return "; declare it under secrets: (env, file, command or prompt)"


class SecretValues:
    """Resolved secret values by name; never shown by ``repr`` or ``str``."""

    __slots__ = ("_values", "warnings")

    def __init__(self, values: Mapping[str, str], warnings: Collection[str] = ()) -> None:
        """Hold ``values`` (name -> value) and the warnings found while reading them."""
        self._values = dict(values)
        self.warnings: tuple[str, ...] = tuple(warnings)
        """Problems worth telling the user (a secret file others may read)."""

    def __repr__(self) -> str:
        return f"SecretValues({sorted(self._values)})"

    __str__ = __repr__

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    @property
    def names(self) -> list[str]:
        """The secret names, in declaration order."""
        return list(self._values)

    def reveal(self) -> dict[str, str]:
        """The values themselves (for redaction and process environments only)."""
        return dict(self._values)

    def substitute(self, text: str) -> str:
        """``text`` with every ``${secret:NAME}`` replaced by its value.

        Raises:
            KeyError: for a name without a value (the loader rejects those before).
        """
        if "${secret:" not in text:
            return text
        values = self._values

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise KeyError(f"${{secret:{name}}}: no such secret")
            return values[name]

        return SECRET_REF.sub(one, text)
