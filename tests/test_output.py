"""Output store: nothing lost, byte-exact logs, bounded memory, cursors, views, rotation."""

from __future__ import annotations

import logging
import os
import stat
import time
import tracemalloc
from itertools import cycle
from pathlib import Path

import pytest

from devster_tui.state.output import Line, OutputStore, log_file_name

ODD_SIZES = (1, 3, 7, 4093, 65521, 13, 100003, 999, 31)


def numbered(count: int) -> bytes:
    return b"".join(b"line %07d of the numbered output\n" % i for i in range(count))


def feed(store: OutputStore, task: str, stream: str, data: bytes, run: int = 1) -> None:
    sizes = cycle(ODD_SIZES)
    pos = 0
    while pos < len(data):
        size = next(sizes)
        store.append(task, stream, data[pos : pos + size], run)
        pos += size


def rotated_bytes(path: Path) -> bytes:
    """Concatenate PATH.N .. PATH.1, PATH: the bytes in the order they were written."""
    backups = sorted(
        (p for p in path.parent.glob(path.name + ".*")), key=lambda p: -int(p.suffix[1:])
    )
    return b"".join(p.read_bytes() for p in [*backups, path])


def test_million_lines_and_final_partial_reach_the_log_once_in_order(tmp_path: Path) -> None:
    data = numbered(1_000_000) + b"final line without newline"
    store = OutputStore(tmp_path, max_bytes=4 * 2**20, backups=100)
    expected = 0
    tail_seen: list[bytes] = []

    def check(stream: str, line: bytes, run: int) -> None:
        nonlocal expected
        if expected < 1_000_000:
            assert line == b"line %07d of the numbered output" % expected
        else:
            tail_seen.append(line)
        expected += 1

    store.subscribe_lines("gen", check)
    feed(store, "gen", "stdout", data)
    store.finish("gen", "stdout")
    store.close()
    path = store.log_path("gen", "stdout")
    assert path is not None
    on_disk = rotated_bytes(path)
    assert on_disk == data
    lines = on_disk.split(b"\n")
    assert lines[:-1] == [b"line %07d of the numbered output" % i for i in range(1_000_000)]
    assert lines[-1] == b"final line without newline"
    assert expected == 1_000_001 and tail_seen == [b"final line without newline"]
    assert store.stats("gen") == (1_000_001, len(data))
    assert store.end("gen", "stdout") == store.end("gen", "both") == 1_000_001
    (last,) = store.tail("gen", "stdout", 1)
    assert last == Line(1_000_000, "stdout", b"final line without newline", 1, True)
    assert not store.tail("gen", "stdout", 2)[0].partial


def test_append_hot_path_stays_far_under_a_second_per_million_lines(tmp_path: Path) -> None:
    data = b"".join(b"%07d " % i + b"x" * 71 + b"\n" for i in range(1_000_000))
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    store = OutputStore(tmp_path, max_bytes=2**31)
    started = time.process_time()
    for chunk in chunks:
        store.append("w1", "stdout", chunk, 1)
    cpu = time.process_time() - started
    store.close()
    assert store.stats("w1") == (1_000_000, len(data))
    # Measured ~0.2 s on 2 cores; the bound leaves room for a loaded CI machine.
    assert cpu < 1.5, f"append took {cpu:.2f} s CPU for 1,000,000 lines"


def test_ten_mib_line_keeps_memory_bounded_and_the_log_exact(tmp_path: Path) -> None:
    store = OutputStore(tmp_path, max_line=64 * 1024, memory_bytes=256 * 1024)
    chunk = b"y" * 65536
    tracemalloc.start()
    try:
        for _ in range(160):  # 10 MiB, no newline yet
            store.append("big", "stdout", chunk, 1)
        store.append("big", "stdout", b"\nafter\n", 1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    store.close()
    assert peak < 2 * 2**20, f"peak {peak} bytes for a 10 MiB line"
    path = store.log_path("big", "stdout")
    assert path is not None
    assert rotated_bytes(path) == chunk * 160 + b"\nafter\n"  # rotated at 10 MiB
    lines = store.tail("big", "stdout", 100)
    assert lines[-1].data == b"after" and not lines[-1].partial
    assert lines[-2].data == b"y" * 65536 and not lines[-2].partial  # the line's last piece
    assert all(line.partial for line in lines[:-2])
    assert store.first("big", "stdout") > 0  # older pieces left memory, not the log
    assert store.end("big", "stdout") == 160 + 1


def test_endless_stream_without_newline_keeps_memory_bounded() -> None:
    store = OutputStore(None)  # defaults: 1 MiB pieces, 8 MiB per view
    chunk = b"z" * 65536
    tracemalloc.start()
    try:
        for _ in range(1600):  # 100 MiB
            store.append("spin", "stderr", chunk, 1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * 2**20, f"peak {peak} bytes for 100 MiB without newline"
    assert store.stats("spin") == (99, 100 * 2**20)  # the last MiB is still pending


def test_invalid_utf8_is_stored_byte_exact_and_shown_with_replacements(tmp_path: Path) -> None:
    raw = b"\xff\xfe ok \xc3\x28 \xe2\x82\n\x00\x1b[31mred\x1b[0m\n"
    store = OutputStore(tmp_path)
    store.append("t", "stderr", raw, 1)
    store.close()
    lines = store.read("t", "stderr", 0, 10)
    assert [line.data for line in lines] == [
        b"\xff\xfe ok \xc3\x28 \xe2\x82",
        b"\x00\x1b[31mred\x1b[0m",
    ]
    assert lines[0].text == "\ufffd\ufffd ok \ufffd( \ufffd"
    path = store.log_path("t", "stderr")
    assert path is not None and path.read_bytes() == raw


def test_carriage_return_progress_stays_in_one_line() -> None:
    store = OutputStore(None)
    store.append("t", "stdout", b"10%\r", 1)
    store.append("t", "stdout", b"50%\r100%\ndone\n", 1)
    assert [line.data for line in store.read("t", "stdout", 0, 10)] == [b"10%\r50%\r100%", b"done"]


def test_rotation_caps_files_and_keeps_the_newest_bytes(tmp_path: Path) -> None:
    store = OutputStore(tmp_path, max_bytes=100, backups=2)
    data = numbered(50)  # 1,700 bytes
    feed(store, "r", "stdout", data)
    store.close()
    path = store.log_path("r", "stdout")
    assert path is not None
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["r.stdout.log", "r.stdout.log.1", "r.stdout.log.2"]
    assert all(p.stat().st_size <= 100 for p in tmp_path.iterdir())
    kept = rotated_bytes(path)
    assert data.endswith(kept) and len(kept) > 200


def test_rotation_counts_bytes_left_by_an_earlier_session(tmp_path: Path) -> None:
    first = OutputStore(tmp_path, max_bytes=100, backups=1)
    first.append("t", "stdout", b"a" * 90, 1)
    first.close()
    second = OutputStore(tmp_path, max_bytes=100, backups=1)
    second.append("t", "stdout", b"b" * 20, 1)
    second.close()
    path = second.log_path("t", "stdout")
    assert path is not None
    assert path.read_bytes() == b"b" * 10
    assert Path(f"{path}.1").read_bytes() == b"a" * 90 + b"b" * 10


def test_cursor_reads_across_ring_eviction_lose_nothing_still_held() -> None:
    store = OutputStore(None, memory_lines=10)
    for i in range(25):
        store.append("t", "stdout", b"%d\n" % i, 1)
    assert (store.first("t", "stdout"), store.end("t", "stdout")) == (15, 25)
    stale = store.read("t", "stdout", 3, 5)  # cursor fell behind: resume at the oldest held
    assert [(line.n, line.data) for line in stale] == [(n, b"%d" % n) for n in range(15, 20)]
    cursor = 20
    received: list[int] = []
    for i in range(25, 60):
        store.append("t", "stdout", b"%d\n" % i, 1)
        if i % 4 == 0:
            batch = store.read("t", "stdout", cursor, 3)
            received.extend(line.n for line in batch)
            cursor = batch[-1].n + 1 if batch else cursor
    received.extend(line.n for line in store.read("t", "stdout", cursor, 1000))
    assert received == sorted(set(received))  # no line twice, in order
    assert received[-1] == 59 and store.read("t", "stdout", 60, 10) == []


def test_both_view_interleaves_by_arrival_with_markers_and_runs() -> None:
    store = OutputStore(None)
    store.mark("t", "── run 1 ──", 1)
    store.append("t", "stdout", b"o1\no", 1)
    store.append("t", "stderr", b"e1\n", 1)
    store.append("t", "stdout", b"2\n", 1)
    store.finish("t", "stdout")
    store.mark("t", "── run 2 ──", 2)
    store.append("t", "stderr", b"e2 no newline", 2)
    store.finish("t", "stderr")
    both = [
        (line.n, line.stream, line.data, line.run, line.partial)
        for line in store.read("t", "both", 0, 100)
    ]
    assert both == [
        (0, "marker", "── run 1 ──".encode(), 1, False),
        (1, "stdout", b"o1", 1, False),
        (2, "stderr", b"e1", 1, False),
        (3, "stdout", b"o2", 1, False),
        (4, "marker", "── run 2 ──".encode(), 2, False),
        (5, "stderr", b"e2 no newline", 2, True),
    ]
    assert [(line.n, line.data) for line in store.read("t", "stdout", 0, 10)] == [
        (0, b"o1"),
        (1, b"o2"),
    ]
    assert [(line.n, line.run) for line in store.read("t", "stderr", 0, 10)] == [(0, 1), (1, 2)]
    assert store.stats("t")[0] == 4  # markers are not output


def test_runs_stay_right_after_their_start_was_evicted() -> None:
    store = OutputStore(None, memory_lines=5)
    for run in (1, 2, 3):
        store.append("t", "stdout", b"".join(b"r%d-%d\n" % (run, i) for i in range(4)), run)
    lines = store.read("t", "stdout", 0, 10)
    assert [(line.n, line.run) for line in lines] == [(7, 2), (8, 3), (9, 3), (10, 3), (11, 3)]


def test_views_and_unknown_tasks() -> None:
    store = OutputStore(None)
    assert store.read("nope", "both", 0, 10) == [] and store.end("nope", "stdout") == 0
    assert store.tail("nope", "stderr", 5) == [] and store.stats("nope") == (0, 0)
    assert store.log_path("nope", "stdout") is None
    store.finish("nope", "stdout")
    with pytest.raises(ValueError):
        store.read("nope", "stdin", 0, 1)
    with pytest.raises(ValueError):
        store.append("t", "stdin", b"x", 0)


def test_failing_line_subscriber_is_logged_and_unsubscribe_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = OutputStore(None)
    seen: list[tuple[str, bytes, int]] = []

    def broken(stream: str, line: bytes, run: int) -> None:
        raise RuntimeError("consumer bug")

    store.subscribe_lines("t", broken)
    unsubscribe = store.subscribe_lines("t", lambda s, line, r: seen.append((s, line, r)))
    with caplog.at_level(logging.ERROR, logger="devster_tui.state.output"):
        store.append("t", "stdout", b"a\nb\n", 4)
    assert seen == [("stdout", b"a", 4), ("stdout", b"b", 4)]
    assert len(caplog.records) == 2
    unsubscribe()
    store.append("t", "stdout", b"c\n", 4)
    assert len(seen) == 2 and store.end("t", "stdout") == 3


def test_log_files_are_owner_only_even_under_umask_000(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "logs"
    old = os.umask(0)
    try:
        store = OutputStore(directory, max_bytes=10, backups=1)
        store.append("t", "stdout", b"0123456789abc\n", 1)
        store.append("t", "stderr", b"err\n", 1)
        store.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = list(directory.iterdir())
    assert len(files) == 3
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}


def test_task_names_cannot_escape_the_log_directory(tmp_path: Path) -> None:
    assert log_file_name("web@host-1", "stdout") == "web@host-1.stdout.log"
    assert "/" not in log_file_name("../../etc/passwd", "stdout")
    assert not log_file_name(".hidden", "stderr").startswith(".")
    assert log_file_name("a b", "stdout") != log_file_name("a_b", "stdout")
    store = OutputStore(tmp_path / "logs")
    store.append("../escape", "stdout", b"x\n", 1)
    store.close()
    assert [p.parent for p in (tmp_path / "logs").iterdir()] == [tmp_path / "logs"]
    assert not (tmp_path / "escape.stdout.log").exists()


def test_bulk_read_returns_the_same_lines_and_streams_as_read() -> None:
    """Pins: the headless printer's bulk path (read_raw) diverging from read()."""
    store = OutputStore(None, memory_lines=100)
    store.append("t", "stdout", b"o1\no2\n", run=1)
    store.mark("t", "run 2", run=2)
    store.append("t", "stderr", b"e1\n", run=2)
    store.append("t", "stdout", b"o3\n", run=2)
    for view in ("stdout", "stderr", "both"):
        lines = store.read("t", view, 0, 50)
        start, datas, tags = store.read_raw("t", view, 0, 50)
        assert start == lines[0].n
        assert datas == [line.data for line in lines]
        assert tags == [line.stream for line in lines]
    assert store.read_raw("t", "both", 0, 50)[2] == [
        "stdout",
        "stdout",
        "marker",
        "stderr",
        "stdout",
    ]
    assert store.read_raw("missing", "both", 3, 10) == (3, [], [])
