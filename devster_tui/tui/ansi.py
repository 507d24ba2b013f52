"""Turn a task's raw output line into safe Rich text: SGR colour kept, every other escape gone.

A task's bytes go to the user's real terminal through this module only, so it is the one
place where output is made honest and harmless: SGR (colour and attributes) sequences become
Rich styles; every other escape sequence (clear screen, window title, OSC 52 clipboard,
hyperlinks, alternate screen, cursor moves and queries, DCS/APC/PM/SOS strings, C1 controls)
is dropped; remaining control characters are shown as visible symbols; carriage-return
progress bars collapse to the latest text; invalid UTF-8 becomes U+FFFD.  The text is built
with ``Text.append`` and never parsed as Rich markup, so ``[bold]`` stays literal.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rich.color import Color
from rich.style import Style
from rich.text import Text

_FAST_SAFE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f\xc2]")
"""Bytes that need the slow path (controls, and 0xC2 which starts every UTF-8 C1 code)."""

_TOKEN = re.compile(
    r"""
    (?P<csi>(?:\x1b\[|\x9b)(?P<params>[0-?]*)(?P<inter>[ -/]*)(?P<final>[@-~]))
  | (?P<string>(?:\x1b[\]P_^X]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|$))
  | (?P<esc>\x1b[ -/]*[0-~]?)
  | (?P<cr>\r)
  | (?P<tab>\t)
  | (?P<ctrl>[\x00-\x08\x0a-\x1f\x7f-\x9f])
    """,
    re.VERBOSE | re.DOTALL,
)
"""One escape sequence or control character; plain text lies between matches."""

_ANSI_NAMES = (
    "black",
    "red",
    "green",
    "yellow",
    "blue",
    "magenta",
    "cyan",
    "white",
)

TAB_SIZE = 8
"""Tab stops every 8 cells, like a terminal."""


def _control_picture(char: str) -> str:
    """A visible stand-in for a control character (U+2400 block, U+FFFD for C1)."""
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    return "\ufffd"


_SGR_ATTRS: dict[int, Style] = {
    1: Style(bold=True),
    2: Style(dim=True),
    3: Style(italic=True),
    4: Style(underline=True),
    5: Style(blink=True),
    6: Style(blink=True),
    7: Style(reverse=True),
    8: Style(conceal=True),
    9: Style(strike=True),
    21: Style(underline2=True),
    22: Style(bold=False, dim=False),
    23: Style(italic=False),
    24: Style(underline=False, underline2=False),
    25: Style(blink=False),
    27: Style(reverse=False),
    28: Style(conceal=False),
    29: Style(strike=False),
    53: Style(overline=True),
    55: Style(overline=False),
}
"""SGR codes that switch one text attribute on or off."""


@lru_cache(maxsize=1024)
def _sgr(style: Style, params: str) -> Style:
    """Apply one SGR parameter string to ``style`` (cached: logs repeat the same few)."""
    codes: list[int] = []
    for part in params.replace(":", ";").split(";"):
        try:
            codes.append(int(part) if part else 0)
        except ValueError:
            return style
    if not codes:
        codes = [0]
    i = 0
    while i < len(codes):
        code = codes[i]
        i += 1
        if code == 0:
            style = Style()
        elif code in _SGR_ATTRS:
            style += _SGR_ATTRS[code]
        elif 30 <= code <= 37:
            style += Style(color=Color.from_ansi(code - 30))
        elif 40 <= code <= 47:
            style += Style(bgcolor=Color.from_ansi(code - 40))
        elif 90 <= code <= 97:
            style += Style(color=Color.from_ansi(code - 90 + 8))
        elif 100 <= code <= 107:
            style += Style(bgcolor=Color.from_ansi(code - 100 + 8))
        elif code == 39:
            style += Style(color="default")
        elif code == 49:
            style += Style(bgcolor="default")
        elif code in (38, 48):
            color: Color | None = None
            if i < len(codes) and codes[i] == 5 and i + 1 < len(codes):
                if 0 <= codes[i + 1] <= 255:
                    color = Color.from_ansi(codes[i + 1])
                i += 2
            elif i < len(codes) and codes[i] == 2 and i + 3 < len(codes):
                r, g, b = (max(0, min(255, c)) for c in codes[i + 1 : i + 4])
                color = Color.from_rgb(r, g, b)
                i += 4
            else:
                i = len(codes)
            if color is not None:
                style += Style(color=color) if code == 38 else Style(bgcolor=color)
    return style


def decode(data: bytes) -> str:
    """Decode a raw line as UTF-8, invalid bytes becoming U+FFFD."""
    return data.decode("utf-8", errors="replace")


def render_line(data: bytes) -> Text:
    """Render one raw output line (no trailing newline) as safe Rich text.

    Args:
        data: The raw bytes of the line, exactly as the task wrote them.

    Returns:
        Text with SGR styles applied, all other escape sequences removed, control
        characters made visible, tabs expanded and carriage returns collapsed to the text
        written after the last one.
    """
    if data.endswith(b"\r"):
        data = data.rstrip(b"\r")
    if not _FAST_SAFE.search(data):
        return Text(decode(data).expandtabs(TAB_SIZE), end="", no_wrap=True)
    text = decode(data)
    out = Text(end="", no_wrap=True)
    previous = Text(end="", no_wrap=True)
    style = Style()
    column = 0
    pos = 0

    def emit(chunk: str) -> None:
        nonlocal column
        if chunk:
            out.append(chunk, style or None)
            column += len(chunk)

    for match in _TOKEN.finditer(text):
        emit(text[pos : match.start()])
        pos = match.end()
        kind = match.lastgroup
        if kind == "csi":
            if match.group("final") == "m" and not match.group("inter"):
                params = match.group("params")
                if not params or params[0] not in "<=>?":
                    style = _sgr(style, params)
        elif kind == "cr":
            if out.plain:
                previous = out
            out = Text(end="", no_wrap=True)
            column = 0
        elif kind == "tab":
            emit(" " * (TAB_SIZE - column % TAB_SIZE))
        elif kind == "ctrl":
            char = match.group()
            if char != "\x07":
                emit(_control_picture(char))
        # "string" (OSC, DCS, APC, PM, SOS) and lone "esc" sequences are dropped.
    emit(text[pos:])
    if not out.plain and previous.plain:
        return previous
    return out


def plain_line(data: bytes) -> str:
    """The visible text of a raw line, as :func:`render_line` would show it (for search)."""
    return render_line(data).plain
