"""Composition root: parse the command line and hand over to one sub-command module.

argparse (stdlib) is used rather than click or typer: it costs ~1 ms to import, which keeps
``devster --help`` and ``--version`` well under the 150 ms budget, and every sub-command
module imports its heavy dependencies (pydantic, textual, docker, asyncssh) only inside its
``run`` function.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from devster_tui import __version__
from devster_tui.errors import DevsterError, ExitCode

# (name, module, one-line help).  Each module provides ``add_arguments(parser)`` and
# ``run(args) -> int`` and must not import heavy packages at module level.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("init", "devster_tui.commands.init", "write a commented starter devster.yaml"),
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
    (
        "completion",
        "devster_tui.commands.completion",
        "print a completion script for bash, zsh or fish",
    ),
)

# Each help page ends with one or two real uses (command, comment), runnable from the
# repository root against examples/ (the client commands: in examples/quickstart after
# ``devster up -d`` there).  Kept here, as plain strings, so that ``devster --help``
# imports no command module; tests/test_cli_help_examples.py parses every line with the
# real parser.  The key "" is the top-level help.
EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "": (
        ("devster up -f examples/quickstart", "run the quickstart example in the cockpit"),
        ("devster run -f examples/quickstart unit-tests", "run a job; exit with its result"),
    ),
    "init": (
        ("devster init", "write ./devster.yaml, named after this directory"),
        ("devster init -f myapp", "write myapp/devster.yaml (the directory is created)"),
    ),
    "up": (
        ("devster up -f examples/quickstart", "every autostart task, in the cockpit"),
        ("devster up -d -f examples/quickstart server", "the server and its build, detached"),
    ),
    "run": (
        ("devster run -f examples/quickstart unit-tests", "one job; exit 0 if it succeeded"),
        (
            "devster run -f examples/quickstart integration-tests",
            "start the server it needs, run it, stop",
        ),
    ),
    "replay": (
        ("devster replay examples/quickstart/.devster", "the timeline of the last devster up"),
        ("devster replay --tui examples/quickstart/.devster", "step through it in the cockpit"),
    ),
    "validate": (
        ("devster validate -f examples/quickstart", "check the file, print every problem"),
    ),
    "schema": (("devster schema > devster.schema.json", "for your editor (yaml-language-server)"),),
    "graph": (
        ("devster graph -f examples/quickstart", "dependencies, triggers and pipes as a tree"),
        ("devster graph -f examples/dev-loop --format mermaid", "a flowchart for Markdown"),
    ),
    "ps": (
        ("devster ps", "the tasks of the engine running for this project"),
        ("devster ps --json", "the full state, for scripts"),
    ),
    "logs": (
        ("devster logs -f server", "the server's output so far, then follow it"),
        ("devster logs -n 20 --view stderr server worker", "the last 20 stderr lines of each"),
    ),
    "restart": (("devster restart server", "restart it (and its dependents, by their rules)"),),
    "stop": (
        ("devster stop worker", "stop it gracefully; it stays stopped"),
        ("devster stop --force server", "kill it at once"),
    ),
    "start": (("devster start worker", "start it and whatever it depends on"),),
    "trigger": (
        ("devster trigger go-integration", "approve the gate of the integration tests"),
        ("devster trigger unit-tests", "run the unit tests again now"),
    ),
    "events": (
        ("devster events --follow", "every event as it happens (Ctrl-C ends)"),
        ("devster events --json --since 100", "events after seq 100, one JSON per line"),
    ),
    "wait": (
        ("devster wait server --for healthy --timeout 60", "exit 0 once healthy, 4 after 60 s"),
    ),
    "down": (("devster down", "stop every task and the engine"),),
    "attach": (
        ("devster attach", "the cockpit of the engine started with devster up -d"),
        ("devster attach --read-only", "watch without acting"),
    ),
    "web": (
        ("devster web", "the cockpit at http://127.0.0.1:8000"),
        ("devster web --host 0.0.0.0 --read-only", "for your team, read-only, with a token"),
    ),
    "completion": (
        (
            "devster completion bash > ~/.local/share/bash-completion/completions/devster",
            "bash",
        ),
        ("devster completion fish > ~/.config/fish/completions/devster.fish", "fish"),
    ),
}


class _CommandModule(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


class _TopHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' layout, and leaves room for the longest command name.

    argparse measures sub-command names without their extra indentation, so a name as long
    as ``completion`` would push its help onto the next line.
    """

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if isinstance(action, argparse._SubParsersAction):
            longest = max((len(name) for name in action.choices), default=0)
            self._action_max_length = max(
                self._action_max_length, longest + self._current_indent + 2
            )


def examples_epilog(command: str) -> str:
    """The ``examples:`` section that ends the help of ``command`` ("" for ``devster``)."""
    rows = EXAMPLES[command]
    width = max(len(line) for line, _comment in rows)
    lines = [f"  {line:<{width}}  # {comment}" for line, comment in rows]
    return "examples:\n" + "\n".join(lines)


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
        description="A terminal cockpit for your running system: tasks, dependencies,\n"
        "triggers, gates, pipes and layers, supervised and shown live.\n"
        "`devster COMMAND --help` shows a command's options and examples.",
        epilog=examples_epilog(""),
        formatter_class=_TopHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"devster {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = None if argv is None else _chosen_command(argv)
    for name, module_name, help_text in COMMANDS:
        command_parser = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=examples_epilog(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        # _full_parser: the whole command tree, for commands that describe it (completion).
        command_parser.set_defaults(_module=module_name, _full_parser=_full_parser)
        if argv is None or name == chosen:
            module = cast(_CommandModule, importlib.import_module(module_name))
            module.add_arguments(command_parser)
    return parser


def _full_parser() -> argparse.ArgumentParser:
    return build_parser(None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run devster with ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    The one place errors become what a user reads: a :class:`DevsterError` is printed as
    ``devster: MESSAGE`` and exits with its code; an ``OSError`` nothing handled names its
    path; anything else is one line too, with the traceback only under ``DEVSTER_DEBUG=1``
    (and in ``engine.log``, for the background engine of ``up -d``).
    """
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words)
    args = parser.parse_args(words)
    module_name = getattr(args, "_module", None)
    if module_name is None:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    module = cast(_CommandModule, importlib.import_module(module_name))
    try:
        return module.run(args)
    except DevsterError as exc:
        return _report(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        return ExitCode.SIGINT
    except BrokenPipeError:
        # `devster graph | head`: the reader went away; that is not an error.
        try:
            sys.stdout.close()
        except OSError:
            pass
        return ExitCode.OK
    except Exception as exc:
        # ``up -d``'s engine writes to STATE_DIR/engine.log, where a traceback helps.
        if os.environ.get("DEVSTER_DEBUG") or getattr(args, "background_engine", False):
            raise
        if isinstance(exc, OSError) and exc.strerror:
            where = f"{exc.filename}: " if exc.filename is not None else ""
            return _report(f"{where}{exc.strerror}", ExitCode.FAILED)
        return _report(
            f"internal error: {type(exc).__name__}: {exc} (DEVSTER_DEBUG=1 shows the traceback)",
            ExitCode.FAILED,
        )


def _report(message: str, code: int) -> int:
    """Write ``devster: MESSAGE`` (one line) to stderr; return ``code``."""
    text = " ".join(message.split("\n"))
    try:
        sys.stderr.write(f"devster: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr is gone (a closed terminal): the code still counts
        pass
    return int(code)
