"""An interpolation error points at the ``${`` at fault when the source maps 1:1 to the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from devster_tui.config.errors import ConfigErrors
from devster_tui.config.loader import load_project


def _where(tmp_path: Path, text: str, **environ: str) -> list[tuple[int, int]]:
    file = tmp_path / "devster.yaml"
    file.write_bytes(text.encode("utf-8"))
    with pytest.raises(ConfigErrors) as info:
        load_project(file, environ=environ)
    return [(e.line, e.col) for e in info.value.errors]


@pytest.mark.parametrize(
    ("line", "col"),
    [
        ("    cmd: echo ${NOPE} done\n", 15),  # plain
        ('    cmd: "echo ${NOPE} done"\n', 16),  # double-quoted
        ("    cmd: 'echo ${NOPE} done'\n", 16),  # single-quoted
        ("    cmd: [echo, 'a ${NOPE}']\n", 20),  # an item of a flow list
        ("    cmd: echo $$ $(date) ${NOPE}\n", 26),  # escapes and shell text before it
        ("    cmd: echo ${SET} ${NOPE}\n", 22),  # the second reference is the bad one
        ("    cmd: echo ${A:-x ${NOPE}}\n", 22),  # a reference inside a default
        ("    cmd: echo ${A:?need ${NOPE}}\n", 25),  # a reference inside a message
        ("    cmd: 'caf\u00e9 ${NOPE}'  # comment\n", 16),  # columns count characters
    ],
)
def test_interpolation_error_points_at_the_dollar_of_the_bad_reference(
    tmp_path: Path, line: str, col: int
) -> None:
    text = "tasks:\n  api:\n" + line
    assert _where(tmp_path, text, SET="1") == [(3, col)]
    assert line[col - 1 : col + 1] == "${"


def test_crlf_file_error_points_at_the_dollar(tmp_path: Path) -> None:
    text = "tasks:\r\n  api:\r\n    cmd: x\r\n    env: {URL: 'http://${HOST}/'}\r\n"
    assert _where(tmp_path, text) == [(4, 24)]
    assert text.split("\r\n")[3][23:25] == "${"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        # Escapes: the source text is longer than the value.
        ('tasks:\n  api:\n    cmd: "echo \\t ${NOPE}"\n', (3, 10)),
        ("tasks:\n  api:\n    cmd: 'it''s ${NOPE}'\n", (3, 10)),
        # Folded over two lines.
        ("tasks:\n  api:\n    cmd: echo\n      ${NOPE}\n", (3, 10)),
        ('tasks:\n  api:\n    cmd: "echo\n      ${NOPE}"\n', (3, 10)),
        # Block scalars.
        ("tasks:\n  api:\n    cmd: |\n      echo ${NOPE}\n", (3, 10)),
        ("tasks:\n  api:\n    cmd: >-\n      echo ${NOPE}\n", (3, 10)),
        # An alias is positioned where it is written, not where its text is.
        ("x-c: &c echo ${NOPE}\ntasks:\n  api:\n    cmd: *c\n", (4, 10)),
        # An anchor in front of the value.
        ("tasks:\n  api:\n    cmd: &c echo ${NOPE}\n", (3, 10)),
    ],
)
def test_interpolation_error_stays_at_the_value_when_the_source_does_not_map_1_to_1(
    tmp_path: Path, text: str, where: tuple[int, int]
) -> None:
    assert _where(tmp_path, text) == [where]


def test_env_file_interpolation_error_points_at_the_dollar(tmp_path: Path) -> None:
    text = "env_file: conf/${STAGE}.env\ntasks:\n  api: {cmd: x}\n"
    assert _where(tmp_path, text) == [(1, 16)]


def test_merged_value_error_points_into_the_anchor_where_it_is_written(tmp_path: Path) -> None:
    text = "x-base: &base\n  cmd: run ${NOPE}\ntasks:\n  api:\n    <<: *base\n"
    assert _where(tmp_path, text) == [(2, 12)]
