"""``.env`` files: ``NAME=value`` lines read byte-exact, with quotes, ``export`` and comments.

Values are never interpolated: a ``$`` in a password or a bcrypt hash
(``$2b$12$...``) arrives exactly as written, quoted or not.  Syntax, line by line:

- blank lines and lines starting with ``#`` are skipped; ``export NAME=value`` is accepted;
- ``NAME=value``: the value runs to the end of the line, without surrounding blanks and
  without a comment that starts with `` #``;
- ``NAME='value'``: taken literally, may span lines;
- ``NAME="value"``: ``\\n``, ``\\t``, ``\\r``, ``\\"``, ``\\\\`` and ``\\$`` are unescaped
  (any other backslash stays), may span lines.
"""

from __future__ import annotations

import re
from pathlib import Path

from devster_tui.config.errors import ConfigError, ConfigErrors

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def parse_env(text: str, file: str) -> dict[str, str]:
    """Parse the text of a ``.env`` file.

    Args:
        text: The file's text.
        file: Its name, for errors.

    Returns:
        The variables, in file order (a later line overrides an earlier one).

    Raises:
        ConfigErrors: every malformed line, each with its line and column.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    result: dict[str, str] = {}
    errors: list[ConfigError] = []
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        lineno = index + 1
        line = lines[index]
        index += 1
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if not stripped or stripped.startswith("#"):
            continue
        body = stripped
        col = indent + 1
        export = re.match(r"export[ \t]+(?=[A-Za-z_])", body)
        if export is not None:
            body = body[export.end() :]
            col += export.end()
        key_match = _KEY.match(body)
        after = body[key_match.end() :] if key_match else body
        if key_match is None or not after.lstrip(" \t").startswith("="):
            message = (
                f"invalid variable name {body.partition('=')[0].strip()!r}"
                if "=" in body
                else f"expected NAME=value, got {body.strip()!r}"
            )
            errors.append(ConfigError(file, lineno, col, (), message))
            continue
        key = key_match.group()
        rest = after.lstrip(" \t")[1:]
        value_col = col + len(body) - len(rest)
        value_text = rest.lstrip(" \t")
        value_col += len(rest) - len(value_text)
        if value_text[:1] in ("'", '"'):
            quote = value_text[0]
            collected = value_text[1:]
            start_line = lineno
            end = _find_quote(collected, quote)
            while end < 0 and index < len(lines):
                collected += "\n" + lines[index]
                index += 1
                end = _find_quote(collected, quote)
            if end < 0:
                errors.append(
                    ConfigError(
                        file,
                        start_line,
                        value_col,
                        (),
                        f"{key}: unclosed {quote} quote (the value is never closed)",
                    )
                )
                continue
            raw = collected[:end]
            trailing = collected[end + 1 :].strip(" \t")
            if trailing and not trailing.startswith("#"):
                end_line = start_line + collected[:end].count("\n")
                errors.append(
                    ConfigError(
                        file,
                        end_line,
                        0,
                        (),
                        f"{key}: unexpected text after the closing quote: {trailing!r}",
                    )
                )
                continue
            result[key] = _unescape(raw) if quote == '"' else raw
        else:
            comment = re.search(r"[ \t]#", value_text)
            if comment is not None:
                value_text = value_text[: comment.start()]
            result[key] = value_text.rstrip(" \t")
    if errors:
        raise ConfigErrors(errors)
    return result


def _find_quote(text: str, quote: str) -> int:
    """Index of the closing quote in ``text`` (backslash escapes count in double quotes)."""
    i = 0
    while i < len(text):
        c = text[i]
        if quote == '"' and c == "\\":
            i += 2
            continue
        if c == quote:
            return i
        i += 1
    return -1


def _unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPES:
            out.append(_ESCAPES[text[i + 1]])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def read_env_file(path: Path, name: str | None = None) -> dict[str, str]:
    """Read and parse a ``.env`` file.

    Args:
        path: The file.
        name: How to name it in errors (default: ``str(path)``).

    Returns:
        The variables.

    Raises:
        ConfigErrors: malformed lines, bytes that are not UTF-8.
        OSError: the file cannot be read (the caller knows where it was configured).
    """
    shown = name or str(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        message = f"not valid UTF-8: byte 0x{data[exc.start : exc.start + 1].hex()} at byte "
        message += f"offset {exc.start}"
        raise ConfigErrors([ConfigError(shown, line, 0, (), message)]) from None
    return parse_env(text, shown)
