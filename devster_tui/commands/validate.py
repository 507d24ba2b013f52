"""``devster validate``: load and check the project file; a one-line summary or every error.

Exit status 0 when the file is valid, 2 when it is not (or no project file is found).  Errors
go to stderr, one per line, as ``FILE:LINE:COL: key.path: message``.
"""

from __future__ import annotations

import argparse
import sys

from devster_tui.commands.options import add_config_options, display_name, load_from_args
from devster_tui.errors import ExitCode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``-f/--file`` and ``--profile``."""
    add_config_options(parser)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def run(args: argparse.Namespace) -> int:
    """Validate the project file and report."""
    loaded = load_from_args(args)
    if loaded is None:
        return ExitCode.CONFIG
    project = loaded.project
    parts = [
        _count(len(project.tasks), "task"),
        _count(len(project.observers), "observer"),
        _count(len(project.environments), "environment"),
    ]
    if project.hosts:
        parts.append(_count(len(project.hosts), "host"))
    name = display_name(loaded.file)
    sys.stdout.write(f"{name}: valid: {', '.join(parts)}\n")
    return ExitCode.OK
