"""Line splitter: chunk boundaries, carriage returns, the length cap, end of stream."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from devster_tui.state.lines import LineSplitter


def split_all(chunks: list[bytes], max_line: int) -> list[tuple[bytes, bool]]:
    """(piece, partial) for every piece, the final unfinished line included."""
    splitter = LineSplitter(max_line)
    out: list[tuple[bytes, bool]] = []
    for chunk in chunks:
        lines, cut = splitter.feed(chunk)
        partial = set(cut or ())
        out.extend((line, i in partial) for i, line in enumerate(lines))
    last = splitter.flush()
    if last is not None:
        out.append((last, True))
    return out


def test_line_split_across_chunks_is_joined() -> None:
    assert split_all([b"hel", b"lo\nwor", b"ld\n"], 100) == [(b"hello", False), (b"world", False)]


def test_carriage_returns_stay_inside_the_line() -> None:
    assert split_all([b"10%\r50", b"%\r100%\r\n"], 100) == [(b"10%\r50%\r100%\r", False)]


def test_empty_lines_are_kept() -> None:
    assert split_all([b"\n\na\n", b"\n"], 100) == [
        (b"", False),
        (b"", False),
        (b"a", False),
        (b"", False),
    ]


def test_final_line_without_newline_is_flushed_as_partial() -> None:
    assert split_all([b"a\nlast"], 100) == [(b"a", False), (b"last", True)]


def test_newline_right_after_a_full_piece_does_not_add_an_empty_line() -> None:
    assert split_all([b"abcd", b"\n"], 4) == [(b"abcd", False)]
    assert split_all([b"abcdefgh", b"\n"], 4) == [(b"abcd", True), (b"efgh", False)]


def test_endless_line_is_cut_while_it_grows() -> None:
    splitter = LineSplitter(10)
    emitted = 0
    for _ in range(1000):
        lines, cut = splitter.feed(b"x" * 7)
        assert (cut or []) == list(range(len(lines)))
        emitted += sum(map(len, lines))
        assert len(splitter.pending) <= 10
    assert emitted + len(splitter.pending) == 7000


@settings(max_examples=400, deadline=None)
@given(
    data=st.binary(max_size=300).map(lambda b: b.replace(b"a", b"\n")),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=20),
    max_line=st.integers(min_value=1, max_value=40),
)
def test_pieces_reassemble_to_the_exact_bytes(data: bytes, cuts: list[int], max_line: int) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    chunks = [data[a:b] for a, b in pairwise(bounds)]
    pieces = split_all(chunks, max_line)
    rebuilt = b"".join(piece if partial else piece + b"\n" for piece, partial in pieces)
    assert rebuilt == data
    assert all(0 < len(piece) <= max_line for piece, partial in pieces if partial)
    assert all(len(piece) <= max_line for piece, _ in pieces)
    assert all(b"\n" not in piece for piece, _ in pieces)
