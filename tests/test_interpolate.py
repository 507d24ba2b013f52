"""Interpolation: ``${VAR}``, defaults, required variables, ``$$``, engine references."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devster_tui.config.errors import SourceMap
from devster_tui.config.interpolate import InterpolationError, interpolate, interpolate_data
from devster_tui.config.types import PlainScalar

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
VALUES = st.text(max_size=30)
WORDS = st.text(alphabet=st.characters(blacklist_characters="${}"), max_size=20)


@given(st.text(alphabet=st.characters(blacklist_characters="$")))
def test_text_without_dollar_is_unchanged(text: str) -> None:
    assert interpolate(text, {}) == text


@given(st.text())
def test_doubled_dollars_escape_to_the_original_text(text: str) -> None:
    assert interpolate(text.replace("$", "$$"), {}) == text


@given(NAMES, VALUES)
def test_set_variable_is_substituted_verbatim_never_reinterpolated(name: str, value: str) -> None:
    assert interpolate(f"<${{{name}}}>", {name: value}) == f"<{value}>"


@given(NAMES, st.one_of(st.none(), VALUES), WORDS)
def test_colon_dash_default_applies_when_unset_or_empty(
    name: str, value: str | None, default: str
) -> None:
    env = {} if value is None else {name: value}
    expected = default if not value else value
    assert interpolate(f"${{{name}:-{default}}}", env) == expected


@given(NAMES, st.one_of(st.none(), VALUES), WORDS)
def test_dash_default_applies_only_when_unset(name: str, value: str | None, default: str) -> None:
    env = {} if value is None else {name: value}
    expected = default if value is None else value
    assert interpolate(f"${{{name}-{default}}}", env) == expected


@given(NAMES, WORDS)
def test_colon_question_fails_with_message_when_unset_or_empty(name: str, message: str) -> None:
    for env in ({}, {name: ""}):
        with pytest.raises(InterpolationError) as caught:
            interpolate(f"x${{{name}:?{message}}}", env)
        assert name in caught.value.message
        assert caught.value.offset == 1
    assert interpolate(f"${{{name}:?{message}}}", {name: "v"}) == "v"


def test_unset_variable_without_default_names_it() -> None:
    with pytest.raises(InterpolationError) as caught:
        interpolate("a ${DB_HOST} b", {})
    assert "variable DB_HOST is not set" in caught.value.message
    assert caught.value.offset == 2


def test_question_without_colon_accepts_empty_value() -> None:
    assert interpolate("${A?needed}", {"A": ""}) == ""
    with pytest.raises(InterpolationError, match="needed"):
        interpolate("${A?needed}", {})


def test_plus_alternative_forms() -> None:
    assert interpolate("${A:+on}", {"A": "1"}) == "on"
    assert interpolate("${A:+on}", {"A": ""}) == ""
    assert interpolate("${A+on}", {"A": ""}) == "on"
    assert interpolate("${A+on}", {}) == ""


def test_nested_default_is_interpolated_lazily() -> None:
    assert interpolate("${A:-${B:-deep}}", {}) == "deep"
    assert interpolate("${A:-${B}}", {"B": "b"}) == "b"
    assert interpolate("${A:-${B}}", {"A": "a"}) == "a"  # B unset but never needed


def test_lone_dollar_and_shell_forms_stay_literal() -> None:
    text = "echo $(date) $HOME $1 cost$ 100$"
    assert interpolate(text, {}) == text


def test_engine_references_are_left_for_the_engine() -> None:
    text = "http://127.0.0.1:${ports.http}/ ${secret:db_password}"
    assert interpolate(text, {}) == text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("${", "unclosed"),
        ("${A", "unclosed"),
        ("${}", "invalid variable reference"),
        ("${1A}", "invalid variable reference"),
        ("${A B}", "after A expected"),
        ("${A:x}", "after A expected"),
    ],
)
def test_bad_reference_syntax_is_an_error(text: str, fragment: str) -> None:
    with pytest.raises(InterpolationError, match=fragment.replace(" ", ".")):
        interpolate(text, {"A": "1"})


def test_interpolate_data_keeps_keys_and_plain_scalar_type() -> None:
    data = {"${K}": PlainScalar("${V}"), "q": "${V}", "n": None, "l": [PlainScalar("$$")]}
    result, errors = interpolate_data(data, {"K": "key", "V": "0755"}, None, "f")
    assert errors == []
    assert result == {"${K}": "0755", "q": "0755", "n": None, "l": ["$"]}
    assert type(result["${K}"]) is PlainScalar
    assert type(result["q"]) is str
    assert type(result["l"][0]) is PlainScalar


def test_interpolate_data_reports_each_failed_value_with_its_position() -> None:
    from devster_tui.config.errors import Position

    source_map = SourceMap()
    source_map.set(("a",), Position(1, 1), Position(1, 4))
    source_map.set(("b", 0), None, Position(2, 6))
    data = {"a": "${X}", "b": ["${Y}"], "c": "fine"}
    result, errors = interpolate_data(data, {}, source_map, "f.yaml")
    assert result == data
    assert [str(e) for e in errors] == [
        "f.yaml:1:4: a: variable X is not set (set it in the environment or the env_file, "
        "or give a default: ${X:-default})",
        "f.yaml:2:6: b[0]: variable Y is not set (set it in the environment or the env_file, "
        "or give a default: ${Y:-default})",
    ]
