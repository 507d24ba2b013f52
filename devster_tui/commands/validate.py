"""``devster validate``: load and check the project file; a one-line summary or every error.

Exit status 0 when the file is valid, 2 when it is not (or no project file is found).  Errors
go to stderr, one per line, as ``FILE:LINE:COL: key.path: message``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from devster_tui.commands.options import add_config_options

EXIT_OK = 0
EXIT_CONFIG = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``-f/--file`` and ``--profile``."""
    add_config_options(parser)


def display_name(path: Path) -> str:
    """The path as users like to read it: relative to the current directory when inside it."""
    try:
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    except (OSError, ValueError):
        return str(path)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def run(args: argparse.Namespace) -> int:
    """Validate the project file and report."""
    from devster_tui.config.discover import DiscoveryError, find_config
    from devster_tui.config.errors import ConfigErrors

    try:
        file = find_config(args.file)
    except DiscoveryError as exc:
        sys.stderr.write(f"devster: {exc}\n")
        return EXIT_CONFIG
    name = display_name(file)

    from devster_tui.config.loader import load_project

    try:
        loaded = load_project(Path(name), args.profile)
    except ConfigErrors as exc:
        sys.stderr.write("".join(f"{error}\n" for error in exc.errors))
        return EXIT_CONFIG
    project = loaded.project
    parts = [
        _count(len(project.tasks), "task"),
        _count(len(project.observers), "observer"),
        _count(len(project.environments), "environment"),
    ]
    if project.hosts:
        parts.append(_count(len(project.hosts), "host"))
    sys.stdout.write(f"{name}: valid: {', '.join(parts)}\n")
    return EXIT_OK
