"""``devster down``: stop every task and the engine (like Ctrl-C in ``devster up``)."""

from __future__ import annotations

import argparse
import sys

from devster_tui.api.client import Client
from devster_tui.commands.clientopts import add_client_options, guarded
from devster_tui.errors import DevsterError, ExitCode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the client options and ``--force``."""
    add_client_options(parser)
    parser.add_argument(
        "--force", action="store_true", help="kill every task at once instead of stopping them"
    )


def run(args: argparse.Namespace) -> int:
    """Ask the engine to shut down and wait until its tasks have stopped."""

    def body(client: Client) -> int:
        client.timeout = None
        health = client.json("GET", "/v1/health")
        command: dict[str, object] = {"action": "shutdown", "tasks": [], "by": "cli"}
        if args.force:
            command["force"] = True
        result = client.json("POST", "/v1/commands", command)
        if not result.get("ok"):
            raise DevsterError(str(result.get("message", "")), ExitCode.FAILED)
        sys.stdout.write(f"stopped (engine pid {health.get('pid')})\n")
        return ExitCode.OK

    return guarded(args, body)
