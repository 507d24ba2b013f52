"""Options shared by the sub-commands that read a project file (``-f``, ``--profile``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devster_tui.config.loader import LoadedProject


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """Add ``-f/--file`` and ``--profile`` to a sub-command's parser."""
    parser.add_argument(
        "-f",
        "--file",
        metavar="FILE",
        help="project file or directory (default: $DEVSTER_FILE, else devster.yaml/.yml/.py "
        "here or in the nearest parent directory)",
    )
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="NAME",
        help="activate a profile (repeatable); adds to the file's default profiles",
    )


def display_name(path: Path) -> str:
    """The path as users like to read it: relative to the current directory when inside it."""
    try:
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    except (OSError, ValueError):
        return str(path)


def load_from_args(args: argparse.Namespace) -> LoadedProject | None:
    """Find and load the project named by ``-f``/``--profile``; report errors on stderr.

    A missing project file is reported as ``devster: MESSAGE``, an invalid one as every
    error, one per line (``FILE:LINE:COL: key.path: message``), with the file's path shown
    relative to the current directory when it is inside it.

    Args:
        args: Parsed arguments carrying ``file`` and ``profile`` (see :func:`add_config_options`).

    Returns:
        The loaded project, or None after printing why it could not be loaded.
    """
    from devster_tui.config.discover import DiscoveryError, find_config
    from devster_tui.config.errors import ConfigErrors
    from devster_tui.config.loader import load_project

    try:
        file = find_config(args.file)
    except DiscoveryError as exc:
        sys.stderr.write(f"devster: {exc}\n")
        return None
    try:
        return load_project(Path(display_name(file)), tuple(args.profile))
    except ConfigErrors as exc:
        sys.stderr.write("".join(f"{error}\n" for error in exc.errors))
        return None
