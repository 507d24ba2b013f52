"""Durations: ``500ms``, ``10s``, ``1m30s`` parse; negative and unit-less values are rejected."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devster_tui.config.types import format_duration, parse_duration

UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@given(st.integers(min_value=0, max_value=10**12))
def test_format_then_parse_round_trips_microseconds(micros: int) -> None:
    seconds = micros / 1_000_000
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-9)


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(sorted(UNITS))), min_size=1))
def test_compound_durations_sum_their_parts(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{n}{unit}" for n, unit in parts)
    expected = sum(n * UNITS[unit] for n, unit in parts)
    assert parse_duration(text) == pytest.approx(expected)


@given(st.integers(min_value=1, max_value=10**9), st.sampled_from(["", *sorted(UNITS)]))
def test_negative_durations_are_rejected(n: int, unit: str) -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_duration(f"-{n}{unit}")


@given(st.one_of(st.integers(min_value=1, max_value=10**9).map(str), st.just("1.5")))
def test_unitless_nonzero_durations_are_rejected_with_a_hint(text: str) -> None:
    with pytest.raises(ValueError, match="add a unit"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["10 parsecs", "5 s", "1d", "s", "ms10", "", "1m30", "--1s"])
def test_malformed_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("0", 0.0),
        ("1.5h", 5400.0),
        ("250us", 25e-5),
    ],
)
def test_documented_examples_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
