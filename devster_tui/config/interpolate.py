"""Variable interpolation in configuration values: ``${VAR}``, defaults, required, ``$$``.

The syntax follows docker compose so that users can move values between the two files:

- ``${VAR}``: the value; an error when VAR is not set.
- ``${VAR:-default}`` / ``${VAR-default}``: default when unset or empty / when unset.
- ``${VAR:?message}`` / ``${VAR?message}``: an error with ``message`` when unset or empty /
  when unset.
- ``${VAR:+other}`` / ``${VAR+other}``: ``other`` when set and non-empty / when set.
- ``$$``: a literal ``$``.  A ``$`` followed by anything but ``{`` or ``$`` stays as it is,
  so shell snippets such as ``$(date)`` or ``$HOME`` pass through to the shell.

``${ports.NAME}`` and ``${secret:NAME}`` are not variables: the loader leaves them untouched
for the engine, which resolves them when the task starts.  The engine renders ``ensure``
templates with this same grammar, passing an ``engine`` resolver that answers
``ports.NAME``, so a template accepts exactly what a configuration value accepts and fails
with the same messages.  Values substituted in are never interpolated again, so ``$`` in a
password or a bcrypt hash arrives byte-exact.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from devster_tui.config.errors import ConfigError, KeyPath, SourceMap
from devster_tui.config.types import PlainScalar

ENGINE_PREFIXES = ("ports.", "secret:")
"""``${...}`` references resolved by the engine at start, never by the loader."""

EngineResolver = Callable[[str], str | None]
"""Answers an engine reference from its body (``ports.http``): the text to put in, or None
to leave the reference as written; a ValueError's message becomes the error."""

_WHOLE = 200
"""Longest one-line text quoted whole in an "unclosed" error (a value, not a template)."""
_EXCERPT = 60
"""Longest excerpt from the unclosed ``${`` on, for longer text."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class InterpolationError(ValueError):
    """A reference that cannot be resolved, or bad ``${...}`` syntax."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        """What is wrong."""
        self.offset = offset
        """Offset of the ``$`` that starts the bad reference, in the interpolated text."""


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` closing a ``${`` whose body starts at ``start`` (-1 if none)."""
    depth = 0
    i = start
    while i < len(text):
        c = text[i]
        if c == "$" and text.startswith("$$", i):
            i += 2
            continue
        if c == "$" and text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if c == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1


def interpolate(
    text: str,
    variables: Mapping[str, str] | Callable[[str], str | None],
    *,
    engine: EngineResolver | None = None,
) -> str:
    """Resolve every ``${...}`` reference and ``$$`` escape in ``text``.

    Args:
        text: The configured value.
        variables: The variables, as a mapping or a lookup returning None for unset names.
        engine: Resolves ``${ports.NAME}`` and ``${secret:NAME}`` references (default:
            none, they are left as written for the engine).

    Returns:
        The text with references replaced.

    Raises:
        InterpolationError: for an unset variable without default, a ``:?`` failure, bad
            syntax or an engine reference ``engine`` rejects; the first one found.
    """
    if "$" not in text:
        return text
    lookup: Callable[[str], str | None] = (
        variables.get if isinstance(variables, Mapping) else variables
    )
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        nxt = text[j + 1] if j + 1 < n else ""
        if nxt == "$":
            out.append("$")
            i = j + 2
            continue
        if nxt != "{":
            out.append("$")
            i = j + 1
            continue
        end = _closing_brace(text, j + 2)
        if end < 0:
            raise InterpolationError(f"unclosed '${{' in {_excerpt(text, j)!r} (missing '}}')", j)
        body = text[j + 2 : end]
        if body.startswith(ENGINE_PREFIXES):
            resolved = _engine_reference(body, engine, j)
            out.append(text[j : end + 1] if resolved is None else resolved)
        else:
            out.append(_resolve(body, lookup, j, engine))
        i = end + 1
    return "".join(out)


def _excerpt(text: str, offset: int) -> str:
    """``text`` when it is one short line, else its line from ``offset`` on, cut short."""
    if len(text) <= _WHOLE and "\n" not in text:
        return text
    line = text[offset:].split("\n", 1)[0]
    return line if len(line) <= _EXCERPT else line[: _EXCERPT - 3] + "..."


def _engine_reference(body: str, engine: EngineResolver | None, offset: int) -> str | None:
    if engine is None:
        return None
    try:
        return engine(body)
    except ValueError as exc:
        raise InterpolationError(str(exc), offset) from None


def _resolve(
    body: str, lookup: Callable[[str], str | None], offset: int, engine: EngineResolver | None
) -> str:
    match = _NAME.match(body)
    if match is None:
        raise InterpolationError(
            f"invalid variable reference '${{{body}}}': expected ${{NAME}}, ${{NAME:-default}}"
            " or ${NAME:?message} (write $$ for a literal $)",
            offset,
        )
    name = match.group()
    rest = body[match.end() :]
    value = lookup(name)
    if not rest:
        if value is None:
            raise InterpolationError(
                f"variable {name} is not set (set it in the environment or the env_file, "
                f"or give a default: ${{{name}:-default}})",
                offset,
            )
        return value
    op = next((o for o in _OPERATORS if rest.startswith(o)), None)
    if op is None:
        raise InterpolationError(
            f"invalid variable reference '${{{body}}}': after {name} expected '}}', ':-', "
            "'-', ':?', '?', ':+' or '+'",
            offset,
        )
    word = rest[len(op) :]
    at = offset + 2 + match.end() + len(op)  # where ``word`` starts in the outer text
    missing = value is None or (op.startswith(":") and value == "")
    if op in (":-", "-"):
        return _nested(word, lookup, at, engine) if missing else str(value)
    if op in (":?", "?"):
        if missing:
            detail = _nested(word, lookup, at, engine) if word else "is required"
            state = "not set" if value is None else "empty"
            raise InterpolationError(f"variable {name} is {state}: {detail}", offset)
        return str(value)
    return "" if missing else _nested(word, lookup, at, engine)


def _nested(
    word: str, lookup: Callable[[str], str | None], at: int, engine: EngineResolver | None
) -> str:
    """Interpolate a default or message; an error's offset counts in the outer text."""
    try:
        return interpolate(word, lookup, engine=engine)
    except InterpolationError as exc:
        raise InterpolationError(exc.message, at + exc.offset) from None


def interpolate_data(
    data: Any,
    variables: Mapping[str, str],
    source_map: SourceMap | None,
    file: str,
    path: KeyPath = (),
) -> tuple[Any, list[ConfigError]]:
    """Interpolate every string value (never a key) of a loaded document.

    Plain scalars stay :class:`PlainScalar` so that typed fields treat them alike before and
    after substitution.  A value whose interpolation fails is kept as written.

    Args:
        data: Dicts, lists, strings and other scalars, as the YAML reader returns them.
        variables: The variables (environment over ``.env`` values).
        source_map: Positions for the errors (None: line 0).
        file: The file name for the errors.
        path: Key path of ``data`` inside the document.

    Returns:
        The new data, and one error per value that failed.
    """
    errors: list[ConfigError] = []

    def walk(value: Any, where: KeyPath) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, (*where, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*where, i)) for i, v in enumerate(value)]
        if isinstance(value, str):
            try:
                result = interpolate(value, variables)
            except InterpolationError as exc:
                pos = source_map.value(where) if source_map is not None else None
                line, col = (pos.line, pos.col) if pos is not None else (0, 0)
                errors.append(ConfigError(file, line, col, where, exc.message))
                return value
            return PlainScalar(result) if isinstance(value, PlainScalar) else result
        return value

    return walk(data, path), errors
