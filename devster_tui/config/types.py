"""Scalar types of the configuration language: durations, sizes, signals, YAML-safe scalars.

The YAML loader hands every plain (unquoted) scalar over as text (a :class:`PlainScalar`), so
that ``NO``, ``on``, ``1.10`` and ``0755`` reach string fields exactly as written.  The types
here turn that text into numbers, booleans, durations and signals where the schema asks for
them, and reject the YAML 1.1 spellings (``yes``/``on``) where a boolean is expected.
"""

from __future__ import annotations

import re
import signal as _signal
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema


class PlainScalar(str):
    """A plain (unquoted) YAML scalar, kept as the exact text the user wrote."""

    __slots__ = ()


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)")
_DURATION_FULL = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|us|h|m|s))+$")
_UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(us|ms|s|m|h))+$|^0$"


def parse_duration(value: Any) -> float:
    """Parse a duration such as ``500ms``, ``10s`` or ``1m30s`` into seconds.

    Args:
        value: The configured value: a string with units, ``0``, or (from Python) a number
            of seconds.

    Returns:
        The duration in seconds.

    Raises:
        ValueError: for negative numbers, missing units or unknown units.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 10s or 1m30s, got a boolean")
    if isinstance(value, int | float) and not isinstance(value, str):
        if value < 0:
            raise ValueError(f"a duration cannot be negative (got {value})")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("expected a duration such as 500ms, 10s or 1m30s")
    text = value.strip()
    if text == "0":
        return 0.0
    if not _DURATION_FULL.match(text):
        hint = ""
        if text.startswith("-"):
            hint = " (durations cannot be negative)"
        elif re.fullmatch(r"\d+(\.\d+)?", text):
            hint = f" (add a unit: {text}s or {text}ms)"
        raise ValueError(
            f"invalid duration {value!r}: expected a number with a unit (us, ms, s, m, h), "
            f"e.g. 500ms, 10s, 1m30s{hint}"
        )
    return sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _DURATION_PART.findall(text))


def format_duration(seconds: float) -> str:
    """Format seconds as the shortest duration string that parses back to the same value."""
    if seconds == 0:
        return "0"
    ms = round(seconds * 1000)
    if abs(ms / 1000 - seconds) < 1e-9:
        if ms % 1000 == 0:
            return f"{ms // 1000}s"
        return f"{ms}ms"
    return f"{round(seconds * 1_000_000)}us"


_SIZE = re.compile(r"^(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB|k|K|M|G)?$")
_SIZE_UNITS = {
    None: 1,
    "B": 1,
    "KB": 1000,
    "k": 1000,
    "K": 1024,
    "KiB": 1024,
    "MB": 1000**2,
    "M": 1024**2,
    "MiB": 1024**2,
    "GB": 1000**3,
    "G": 1024**3,
    "GiB": 1024**3,
}


def parse_size(value: Any) -> int:
    """Parse a byte size such as ``10MiB``, ``500KB`` or a plain number of bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 10MiB")
    if isinstance(value, int) and not isinstance(value, str):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if isinstance(value, str):
        m = _SIZE.match(value.strip())
        if m:
            return int(m.group(1)) * _SIZE_UNITS[m.group(2)]
    raise ValueError(f"invalid size {value!r}: expected e.g. 10MiB, 512KiB or 1000000")


def _signal_names() -> dict[str, int]:
    names: dict[str, int] = {}
    for sig in _signal.Signals:
        if sig.name.startswith("SIG") and not sig.name.startswith("SIG_"):
            names[sig.name] = int(sig)
    return names


SIGNALS = _signal_names()


def parse_signal(value: Any) -> str:
    """Normalise a signal given as ``SIGTERM``, ``TERM``, ``term`` or a number to ``SIGTERM``."""
    if isinstance(value, bool):
        raise ValueError("expected a signal name such as SIGTERM")
    if isinstance(value, int) and not isinstance(value, str):
        for name, num in SIGNALS.items():
            if num == value:
                return name
        raise ValueError(f"unknown signal number {value}")
    if isinstance(value, str):
        text = value.strip().upper()
        if text.isdigit():
            return parse_signal(int(text))
        if not text.startswith("SIG"):
            text = "SIG" + text
        if text in SIGNALS:
            return text
        import difflib

        close = difflib.get_close_matches(text, list(SIGNALS), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ValueError(f"unknown signal {value!r}{hint}")
    raise ValueError("expected a signal name such as SIGTERM")


def _strict_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.lower()
        if low == "true":
            return True
        if low == "false":
            return False
        raise ValueError(f"expected true or false, got {value!r}")
    raise ValueError(f"expected true or false, got {type(value).__name__}")


def _yaml_int(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text, 10)
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _yaml_float(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
    return value


def _text(value: Any) -> Any:
    if isinstance(value, PlainScalar):
        return str(value)
    if isinstance(value, bool | int | float) and not isinstance(value, str):
        # From Python configs: allow numbers (not booleans) where text is expected.
        if isinstance(value, bool):
            raise ValueError("expected a string, got a boolean")
        return str(value)
    return value


def _env_value(value: Any) -> Any:
    if isinstance(value, bool):
        # From Python configs: the text YAML users write for it.
        return "true" if value else "false"
    if isinstance(value, int | float) and not isinstance(value, str):
        return str(value)
    return _text(value)


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["500ms", "10s"]}),
]
"""Seconds, written as ``500ms``, ``10s``, ``1m30s`` or ``0``."""

Size = Annotated[
    int,
    BeforeValidator(parse_size),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]}),
]
"""Bytes, written as ``10MiB``, ``512KiB``, ``1MB`` or a plain integer."""

Signal = Annotated[
    str,
    BeforeValidator(parse_signal),
    WithJsonSchema({"type": "string", "examples": ["SIGTERM", "SIGINT", "TERM"]}),
]
"""A signal name, normalised to ``SIGxxx``."""

Bool = Annotated[bool, BeforeValidator(_strict_bool)]
"""``true`` or ``false`` only: YAML 1.1's ``yes``/``no``/``on``/``off`` are rejected."""

Int = Annotated[int, BeforeValidator(_yaml_int)]
"""A decimal integer."""

Float = Annotated[float, BeforeValidator(_yaml_float)]
"""A number."""

Text = Annotated[str, BeforeValidator(_text)]
"""A string, exactly as written in the file (``NO``, ``0755`` and ``1.10`` stay text)."""

EnvValue = Annotated[
    str,
    BeforeValidator(_env_value),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]
"""An environment variable's value: text exactly as written.  An unquoted ``true`` or
``8080`` is text too, so the JSON Schema accepts strings, numbers and booleans (from Python,
``True`` becomes ``"true"`` and ``8080`` becomes ``"8080"``)."""
