"""``.env`` parsing: quotes, export, comments, multi-line values, byte-exact ``$``."""

from __future__ import annotations

from pathlib import Path

import pytest

from devster_tui.config.envfile import parse_env, read_env_file
from devster_tui.config.errors import ConfigErrors


def test_dotenv_dollar_values_are_never_interpolated() -> None:
    text = (
        "HASH=$2b$12$R9h/cIPz0gi.URNNX3kh2O\n"
        "SINGLE='${NOT_A_VAR} $$'\n"
        'DOUBLE="${ALSO_NOT} \\$ $$"\n'
    )
    assert parse_env(text, ".env") == {
        "HASH": "$2b$12$R9h/cIPz0gi.URNNX3kh2O",
        "SINGLE": "${NOT_A_VAR} $$",
        "DOUBLE": "${ALSO_NOT} $ $$",
    }


def test_dotenv_comments_export_blanks_and_spaces() -> None:
    text = (
        "\ufeff# a comment\n\n"
        "export A=1\n"
        "B = two words   # trailing comment\n"
        "C=a#b\n"
        "  D=indented\n"
        "E=\n"
        "F='quoted # kept'  # dropped\n"
    )
    assert parse_env(text, ".env") == {
        "A": "1",
        "B": "two words",
        "C": "a#b",
        "D": "indented",
        "E": "",
        "F": "quoted # kept",
    }


def test_dotenv_crlf_lines_do_not_leak_carriage_returns() -> None:
    assert parse_env("A=1\r\nB='x'\r\n", ".env") == {"A": "1", "B": "x"}


def test_dotenv_double_quote_escapes_and_multiline() -> None:
    text = 'A="line1\\nline2\\t\\"q\\" \\\\ \\z"\nB="multi\nline"\nC=after\n'
    assert parse_env(text, ".env") == {
        "A": 'line1\nline2\t"q" \\ \\z',
        "B": "multi\nline",
        "C": "after",
    }


def test_dotenv_later_line_overrides_earlier() -> None:
    assert parse_env("A=1\nA=2\n", ".env") == {"A": "2"}


def test_dotenv_reports_every_bad_line_with_position() -> None:
    with pytest.raises(ConfigErrors) as caught:
        parse_env("OK=1\njust words\n1BAD=2\nQ='never closed\n", "x.env")
    found = [(e.line, e.col, e.message) for e in caught.value.errors]
    assert found[0][:2] == (2, 1) and "expected NAME=value" in found[0][2]
    assert found[1][:2] == (3, 1) and "invalid variable name '1BAD'" in found[1][2]
    assert found[2][:2] == (4, 3) and "unclosed ' quote" in found[2][2]


def test_dotenv_text_after_closing_quote_is_an_error() -> None:
    with pytest.raises(ConfigErrors) as caught:
        parse_env("A='x' y\n", ".env")
    assert "unexpected text after the closing quote" in str(caught.value)


def test_dotenv_non_utf8_reports_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"A=1\nB=caf\xe9\n")
    with pytest.raises(ConfigErrors) as caught:
        read_env_file(path, ".env")
    [error] = caught.value.errors
    assert error.line == 2 and "byte 0xe9 at byte offset 9" in error.message
