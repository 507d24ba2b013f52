"""``devster restart|stop|start|trigger TASK...``: send a command to the running engine."""

from __future__ import annotations

import argparse
import sys

from devster_tui.api.client import Client
from devster_tui.commands.clientopts import add_client_options, guarded
from devster_tui.errors import DevsterError, ExitCode

ACTIONS = ("restart", "stop", "start", "trigger")
"""The sub-commands this module serves (the action is the sub-command's name)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the client options, ``--yes``, ``--force`` and the task names."""
    action = parser.prog.split()[-1]
    parser.set_defaults(action=action if action in ACTIONS else "restart")
    add_client_options(parser)
    parser.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="confirm the action on read-only tasks (mode: observe)",
    )
    if action == "stop":
        parser.add_argument(
            "--force", action="store_true", help="kill at once instead of the graceful stop"
        )
    parser.add_argument("tasks", nargs="+", metavar="TASK", help="the tasks")


def run(args: argparse.Namespace) -> int:
    """Send the command; print the engine's answer.

    Raises:
        DevsterError: the engine's refusal (exit 2 for an unknown task name, else 1).
    """

    def body(client: Client) -> int:
        command: dict[str, object] = {"action": args.action, "tasks": args.tasks, "by": "cli"}
        if args.yes:
            command["confirmed"] = True
        if getattr(args, "force", False):
            command["force"] = True
        result = client.json("POST", "/v1/commands", command)
        message = str(result.get("message", ""))
        if not result.get("ok"):
            hint = " (add --yes to confirm)" if result.get("needs_confirmation") else ""
            code = ExitCode.CONFIG if result.get("unknown") else ExitCode.FAILED
            raise DevsterError(f"{message}{hint}", code)
        sys.stdout.write(f"{message}\n")
        return ExitCode.OK

    return guarded(args, body)
