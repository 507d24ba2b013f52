"""Every help page ends with real examples: lines the real parser accepts, naming real tasks.

Each ``devster [COMMAND] --help`` is run as a user runs it; its ``examples:`` section must be
the last one, and every line in it is parsed with ``build_parser(None)``.  Names given to
``-f examples/NAME`` must be folders of examples/, and the tasks an example names must exist
there (client commands talk to examples/quickstart, as the table in cli.py says).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from devster_tui.cli import COMMANDS, EXAMPLES, build_parser
from devster_tui.config.discover import find_config
from devster_tui.config.loader import load_project

ROOT = Path(__file__).resolve().parent.parent
SHELL_OPERATORS = {">", ">>", "|", "&&", "||", ";", "<"}
PAGES = ["", *dict.fromkeys(name for name, _module, _help in COMMANDS)]


def _help(page: str) -> str:
    argv = [page, "--help"] if page else ["--help"]
    proc = subprocess.run(
        [sys.executable, "-m", "devster_tui", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def example_lines(help_text: str) -> list[str]:
    """The lines of the final ``examples:`` section (an AssertionError when there is none)."""
    lines = help_text.rstrip("\n").split("\n")
    assert "examples:" in lines, "no examples: section"
    start = len(lines) - 1 - lines[::-1].index("examples:")
    body = lines[start + 1 :]
    assert body, "empty examples: section"
    assert all(line.startswith("  devster ") for line in body), (
        f"the examples: section is not the last one, or holds other text: {body}"
    )
    return [line.strip() for line in body]


def _words(line: str) -> list[str]:
    """The devster command of an example line: up to a shell operator, without the comment."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    for word in lexer:
        if word in SHELL_OPERATORS:
            break
        words.append(word)
    return words


def _parse(words: list[str]) -> tuple[argparse.Namespace | None, str]:
    parser = build_parser(None)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            return parser.parse_args(words), ""
        except SystemExit:
            return None, err.getvalue().strip().splitlines()[-1]


def _project_names(args: argparse.Namespace) -> tuple[Path, dict[str, str]]:
    """The example project the line talks to and its names (task -> kind, observers too)."""
    chosen = getattr(args, "file", None)
    folder = ROOT / (chosen or "examples/quickstart")
    loaded = load_project(find_config(str(folder)), environ={})
    names: dict[str, str] = {name: task.kind for name, task in loaded.project.tasks.items()}
    names.update(dict.fromkeys(loaded.project.observers, "observer"))
    return folder, names


def problems_of(line: str, page: str) -> list[str]:
    """Why an example line of ``page``'s help is not a real use (empty when it is)."""
    words = _words(line)
    if not words or words[0] != "devster":
        return [f"{line!r}: does not start with devster"]
    args, error = _parse(words[1:])
    if args is None:
        return [f"{line!r}: the parser refuses it: {error}"]
    if page and args.command != page:
        return [f"{line!r}: an example of {args.command}, shown in the help of {page}"]
    chosen = getattr(args, "file", None)
    if args.command == "init" or (chosen and not str(chosen).startswith("examples/")):
        return []
    if chosen and not (ROOT / chosen).is_dir():
        return [f"{line!r}: {chosen} is not a folder of the repository"]
    named = list(getattr(args, "tasks", None) or [])
    if isinstance(getattr(args, "task", None), str):
        named.append(args.task)
    if not named:
        return []
    folder, names = _project_names(args)
    problems = [f"{line!r}: {n} is not a task of {folder.name}" for n in named if n not in names]
    if args.command == "run":
        problems += [f"{line!r}: {n} is not a job" for n in named if names.get(n) != "job"]
    if args.command == "trigger":
        return problems
    return problems + [f"{line!r}: {n} is an observer" for n in named if names.get(n) == "observer"]


@pytest.mark.parametrize("page", PAGES, ids=[p or "devster" for p in PAGES])
def test_help_ends_with_examples_that_parse_and_name_real_tasks(page: str) -> None:
    lines = example_lines(_help(page))
    assert 1 <= len(lines) <= 2, lines
    assert [p for line in lines for p in problems_of(line, page)] == []


def test_the_examples_table_covers_every_command() -> None:
    assert set(EXAMPLES) == set(PAGES)


@pytest.mark.parametrize(
    ("line", "page", "expected"),
    [
        (
            "devster wait server --for healthy --timeout 60s",
            "wait",
            "argument --timeout: invalid float value: '60s'",
        ),
        ("devster logs -f api", "logs", "api is not a task of quickstart"),
        ("devster run -f examples/quickstart server", "run", "server is not a job"),
        ("devster up --no-tuii", "up", "unrecognized arguments: --no-tuii"),
        ("devster ps", "logs", "an example of ps, shown in the help of logs"),
        ("devster graph -f examples/nope", "graph", "examples/nope is not a folder"),
    ],
)
def test_a_wrong_example_is_reported(line: str, page: str, expected: str) -> None:
    problems = problems_of(line, page)
    assert len(problems) == 1 and expected in problems[0], problems


def test_help_without_an_examples_section_is_reported() -> None:
    with pytest.raises(AssertionError, match="no examples"):
        example_lines("usage: devster ps\n\noptions:\n  -h, --help  show help\n")
    with pytest.raises(AssertionError, match="not the last one"):
        example_lines("examples:\n  devster ps  # x\n\noptions:\n  -h  help\n")
