"""Composition root: parse the command line and hand over to one sub-command module.

argparse (stdlib) is used rather than click or typer: it costs ~1 ms to import, which keeps
``devster --help`` and ``--version`` well under the 150 ms budget, and every sub-command
module imports its heavy dependencies (pydantic, textual, docker, asyncssh) only inside its
``run`` function.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from devster_tui import __version__

# (name, module, one-line help).  Each module provides ``add_arguments(parser)`` and
# ``run(args) -> int`` and must not import heavy packages at module level.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    (
        "up",
        "devster_tui.commands.up",
        "start and supervise the tasks (TUI, or --no-tui)",
    ),
    ("run", "devster_tui.commands.run", "run jobs and their dependencies; exit with their result"),
    ("replay", "devster_tui.commands.replay", "print the timeline and final state of an event log"),
    ("validate", "devster_tui.commands.validate", "check the project file and report every error"),
    ("schema", "devster_tui.commands.schema", "print the JSON Schema of project files"),
    ("graph", "devster_tui.commands.graph", "print the task graph (text, mermaid, dot or json)"),
    ("ps", "devster_tui.commands.ps", "list the running engine's tasks and their status"),
    ("logs", "devster_tui.commands.logs", "print (and follow) the output of running tasks"),
    ("restart", "devster_tui.commands.control", "restart tasks of the running engine"),
    ("stop", "devster_tui.commands.control", "stop tasks of the running engine"),
    ("start", "devster_tui.commands.control", "start tasks of the running engine"),
    ("trigger", "devster_tui.commands.control", "trigger tasks of the running engine"),
    ("events", "devster_tui.commands.events", "print (and follow) the running engine's events"),
    (
        "wait",
        "devster_tui.commands.wait",
        "wait until a task is running, healthy, succeeded or stopped",
    ),
    ("down", "devster_tui.commands.down", "stop the running engine and its tasks"),
    ("attach", "devster_tui.commands.attach", "open the cockpit of a running engine"),
    ("web", "devster_tui.commands.web", "serve the cockpit of a running engine in a browser"),
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_USAGE = 64


class _CommandModule(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (the first word that is not an option), if any."""
    names = {name for name, _module, _help in COMMANDS}
    for word in argv:
        if not word.startswith("-"):
            return word if word in names else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Build the argument parser.

    Every sub-command is listed, but only the one named in ``argv`` gets its module imported
    and its arguments added: ``devster --help`` imports no command module at all, and
    ``devster ps`` does not pay for the modules of ``up`` or ``web``.

    Args:
        argv: The command line being parsed; None builds every sub-command fully (for
            documentation and tests).
    """
    parser = argparse.ArgumentParser(
        prog="devster",
        description="A terminal cockpit for your running system: tasks, dependencies, "
        "triggers, gates, pipes and layers, supervised and shown live.",
    )
    parser.add_argument("--version", action="version", version=f"devster {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = None if argv is None else _chosen_command(argv)
    for name, module_name, help_text in COMMANDS:
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        command_parser.set_defaults(_module=module_name)
        if argv is None or name == chosen:
            module = cast(_CommandModule, importlib.import_module(module_name))
            module.add_arguments(command_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run devster with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words)
    args = parser.parse_args(words)
    module_name = getattr(args, "_module", None)
    if module_name is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    module = cast(_CommandModule, importlib.import_module(module_name))
    try:
        return module.run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `devster graph | head`: the reader went away; that is not an error.
        try:
            sys.stdout.close()
        except OSError:
            pass
        return EXIT_OK
