"""``devster wait TASK --for running|healthy|succeeded [--timeout S]``: block until it is.

Follows the event stream and folds it with the engine's reducer, so a state that lasts
only an instant (a job that runs for a millisecond) is still seen.  Exit status: 0 when
the condition holds, 1 when it can no longer hold (failed, blocked, stopped), 2 for an
unknown task, 3 without an engine, 4 on timeout (:class:`~devster_tui.errors.ExitCode`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from devster_tui.api.client import Client
from devster_tui.commands.clientopts import add_client_options, check_task_names, guarded
from devster_tui.errors import ExitCode
from devster_tui.state.selectors import WAIT_CONDITIONS, wait_verdict


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the client options, ``--for``, ``--timeout`` and the task."""
    add_client_options(parser)
    parser.add_argument("task", metavar="TASK", help="the task")
    parser.add_argument(
        "--for",
        dest="condition",
        choices=WAIT_CONDITIONS,
        default="running",
        help="the condition",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS", help="give up after (default 60)"
    )


def run(args: argparse.Namespace) -> int:
    """Wait for the condition; see the module docstring for the exit status."""
    from devster_tui.api.codec import state_from_json
    from devster_tui.state.events import Event
    from devster_tui.state.model import Status
    from devster_tui.state.store import Store

    deadline = time.monotonic() + max(0.0, args.timeout)

    def verdict(status: Status) -> int | None:
        found = wait_verdict(args.condition, status)
        if found == "met":
            return ExitCode.OK
        if found == "hopeless":
            sys.stderr.write(f"devster: {args.task} is {status.value}\n")
            return ExitCode.FAILED
        return None

    def body(client: Client) -> int:
        snapshot = client.json("GET", "/v1/state")
        check_task_names([args.task], snapshot)
        store = Store(initial=state_from_json(snapshot["state"]))
        found = verdict(store.state.tasks[args.task].status)
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
                    found = verdict(task.status)
                    if found is not None:
                        return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return _timed_out(args)
                client.set_stream_timeout(remaining)
        except TimeoutError:
            return _timed_out(args)
        sys.stderr.write("devster: the engine stopped\n")
        return ExitCode.FAILED

    return guarded(args, body)


def event_matters(line: bytes, task: str) -> bool:
    """Whether an event line concerns ``task`` (cheap pre-check before a verdict)."""
    return f'"task":{json.dumps(task)}'.encode() in line


def _timed_out(args: argparse.Namespace) -> int:
    sys.stderr.write(f"devster: {args.task} not {args.condition} after {args.timeout:g}s\n")
    return ExitCode.TIMEOUT
