"""Options shared by the sub-commands that read a project file (``-f``, ``--profile``)."""

from __future__ import annotations

import argparse


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
