"""``devster wait TASK --for running|healthy|succeeded [--timeout S]``: block until it is.

Follows the event stream and folds it with the engine's reducer, so a state that lasts
only an instant (a job that runs for a millisecond) is still seen.  Exit status: 0 when
the condition holds, 1 when it can no longer hold (failed, blocked, stopped), 4 on
timeout, 3 without an engine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from devster_tui.api.client import Client
from devster_tui.commands.clientopts import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_TIMEOUT,
    add_client_options,
    guarded,
)

WANTED = {
    "running": frozenset({"running", "healthy", "unhealthy"}),
    "healthy": frozenset({"healthy"}),
    "succeeded": frozenset({"succeeded"}),
    "stopped": frozenset({"stopped", "exited", "succeeded", "failed"}),
}
"""Statuses that satisfy each ``--for`` condition."""
HOPELESS = {
    "running": frozenset({"failed", "blocked", "stopped"}),
    "healthy": frozenset({"failed", "blocked", "stopped", "exited", "succeeded"}),
    "succeeded": frozenset({"failed", "blocked", "stopped", "exited"}),
    "stopped": frozenset(),
}
"""Statuses after which the condition cannot come true without a new command."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the client options, ``--for``, ``--timeout`` and the task."""
    add_client_options(parser)
    parser.add_argument("task", metavar="TASK", help="the task")
    parser.add_argument(
        "--for", dest="condition", choices=tuple(WANTED), default="running", help="the condition"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS", help="give up after (default 60)"
    )


def run(args: argparse.Namespace) -> int:
    """Wait for the condition; see the module docstring for the exit status."""
    from devster_tui.api.codec import state_from_json
    from devster_tui.state.events import Event
    from devster_tui.state.store import Store

    wanted = WANTED[args.condition]
    hopeless = HOPELESS[args.condition]
    deadline = time.monotonic() + max(0.0, args.timeout)

    def verdict(status: str) -> int | None:
        if status in wanted:
            return EXIT_OK
        if status in hopeless:
            sys.stderr.write(f"devster: {args.task} is {status}\n")
            return EXIT_REFUSED
        return None

    def body(client: Client) -> int:
        snapshot = client.json("GET", "/v1/state")
        store = Store(initial=state_from_json(snapshot["state"]))
        if args.task not in store.state.tasks:
            sys.stderr.write(f"devster: unknown task: {args.task}\n")
            return EXIT_REFUSED
        found = verdict(store.state.tasks[args.task].status.value)
        if found is not None:
            return found
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return _timed_out(args)
        client.timeout = remaining
        try:
            for line in client.stream(f"/v1/events?since={snapshot['seq']}&follow=1"):
                store.apply(Event.from_dict(json.loads(line)))
                task = store.state.tasks.get(args.task)
                if task is not None and event_matters(line, args.task):
                    found = verdict(task.status.value)
                    if found is not None:
                        return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return _timed_out(args)
                client.set_stream_timeout(remaining)
        except TimeoutError:
            return _timed_out(args)
        sys.stderr.write("devster: the engine stopped\n")
        return EXIT_REFUSED

    return guarded(args, body)


def event_matters(line: bytes, task: str) -> bool:
    """Whether an event line concerns ``task`` (cheap pre-check before a verdict)."""
    return f'"task":{json.dumps(task)}'.encode() in line


def _timed_out(args: argparse.Namespace) -> int:
    sys.stderr.write(f"devster: {args.task} not {args.condition} after {args.timeout:g}s\n")
    return EXIT_TIMEOUT
