"""Task output reaches the real terminal as SGR colour only: every other escape is neutralised."""

from __future__ import annotations

import io
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from textual.strip import Strip

from devster_tui.tui.ansi import plain_line, render_line

ONLY_SGR = re.compile(r"\x1b\[[0-9;]*m")


def terminal_bytes(data: bytes) -> str:
    """What the cockpit would write to the terminal for this line."""
    text = render_line(data)
    console = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=500)
    strip = Strip(list(text.render(console)), text.cell_len)
    return strip.render(console)


def assert_only_sgr(out: str) -> None:
    rest = ONLY_SGR.sub("", out)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in rest), repr(rest)


def test_sgr_colour_is_kept_as_style() -> None:
    text = render_line(b"\x1b[1;31mERROR\x1b[0m ok \x1b[38;5;208mX\x1b[38;2;1;2;3mY")
    assert text.plain == "ERROR ok XY"
    styles = {text.plain[s.start : s.end]: s.style for s in text.spans}
    assert "bold" in str(styles["ERROR"]) and "color(1)" in str(styles["ERROR"])
    assert "#010203" in str(styles["Y"])


def test_window_title_osc_is_dropped_with_bel_or_st() -> None:
    assert plain_line(b"a\x1b]0;pwned\x07b") == "ab"
    assert plain_line(b"a\x1b]2;pwned\x1b\\b") == "ab"


def test_osc52_clipboard_write_is_dropped() -> None:
    out = terminal_bytes(b"x\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07y")
    assert "52;" not in out
    assert_only_sgr(out)


def test_clear_screen_alt_screen_cursor_moves_and_queries_are_dropped() -> None:
    for seq in (
        b"\x1b[2J",
        b"\x1b[H",
        b"\x1b[?1049h",
        b"\x1b[6n",
        b"\x1b[c",
        b"\x1b[10;5H",
        b"\x1bc",
        b"\x1b[?1000h",
        b"\x1b[>c",
        b"\x1b7",
        b"\x1b[?25l",
        b"\x1b[3;4r",
    ):
        out = terminal_bytes(b"a" + seq + b"b")
        assert_only_sgr(out)
        assert ONLY_SGR.sub("", out) == "ab", seq


def test_dcs_apc_pm_and_hyperlinks_are_dropped() -> None:
    assert plain_line(b"a\x1bPq#0;2;0;0;0\x1b\\b") == "ab"
    assert plain_line(b"a\x1b_apc\x1b\\b") == "ab"
    assert plain_line(b"a\x1b^pm\x1b\\b") == "ab"
    assert plain_line(b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == "link"


def test_c1_csi_encoded_in_utf8_is_dropped() -> None:
    assert plain_line("a\u009b2Jb".encode()) == "ab"


def test_rich_markup_looking_text_is_literal() -> None:
    assert plain_line(b"[bold red]x[/] [link=http://e]y[/link]") == (
        "[bold red]x[/] [link=http://e]y[/link]"
    )
    assert render_line(b"[bold]x[/bold]").spans == []


def test_invalid_utf8_becomes_replacement_characters() -> None:
    assert plain_line(b"ok \xff\xfe \xc3") == "ok \ufffd\ufffd \ufffd"


def test_carriage_return_progress_bar_collapses_to_the_latest_text() -> None:
    assert plain_line(b"10%\r50%\r100% done") == "100% done"
    assert plain_line(b"line with crlf\r") == "line with crlf"
    assert plain_line(b"progress 99%\r") == "progress 99%"


def test_other_control_characters_are_made_visible_and_tabs_expanded() -> None:
    assert plain_line(b"a\x00b\x08c") == "a\u2400b\u2408c"
    assert plain_line(b"a\x07b") == "ab"
    assert plain_line(b"ab\tc") == "ab      c"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_no_byte_sequence_gets_anything_but_sgr_to_the_terminal(data: bytes) -> None:
    assert_only_sgr(terminal_bytes(data))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"\x1b",
                b"[",
                b"]",
                b"\x07",
                b"\\",
                b"P",
                b"1",
                b";",
                b"m",
                b"H",
                b"x",
                b"\r",
                b"\x9b",
                "\u009b".encode(),
                b"?",
            ]
        ),
        max_size=40,
    )
)
def test_escape_fragments_never_leak(parts: list[bytes]) -> None:
    assert_only_sgr(terminal_bytes(b"".join(parts)))
