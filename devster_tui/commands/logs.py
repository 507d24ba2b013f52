"""``devster logs [-f] [--since RUN] TASK...``: output lines of tasks of the running engine.

Lines come from the engine's in-memory output store (``logs.memory_lines`` per task and
view); older output is in the log files under ``STATE_DIR/logs``.  Bytes are written
exactly as the task printed them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, BinaryIO
from urllib.parse import quote

from devster_tui.api.client import AsyncClient, Client
from devster_tui.api.codec import line_bytes
from devster_tui.commands.clientopts import (
    add_client_options,
    address_of,
    check_task_names,
    guarded,
)
from devster_tui.errors import DevsterError, ExitCode

BATCH = 5000
"""Lines fetched per request."""
FOLLOW_WAIT = 25
"""Seconds one follow request waits for new lines."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the client options, ``-f``, ``--since``, ``--view``, ``-n`` and the tasks."""
    add_client_options(parser, short_file=False)
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        dest="follow_lines",
        help="keep printing new lines (Ctrl-C ends)",
    )
    parser.add_argument(
        "--since",
        metavar="RUN",
        help="only lines of run RUN and later ('last': the current run only)",
    )
    parser.add_argument(
        "--view",
        choices=("both", "stdout", "stderr"),
        default="both",
        help="which stream (default: both, merged in order)",
    )
    parser.add_argument(
        "-n", "--lines", type=int, metavar="N", help="only the last N lines of each task"
    )
    parser.add_argument("tasks", nargs="+", metavar="TASK", help="the tasks")


def _min_run(since: str | None, task: dict[str, Any]) -> int:
    if since is None:
        return 0
    if since == "last":
        return int(task.get("run", 0))
    return int(since)


class _Printer:
    def __init__(self, out: BinaryIO, tasks: list[str]) -> None:
        self.out = out
        width = max(len(t) for t in tasks)
        self.prefix = {t: f"{t:<{width}} | ".encode() for t in tasks} if len(tasks) > 1 else {}

    def emit(self, task: str, lines: list[list[Any]], min_run: int) -> None:
        prefix = self.prefix.get(task, b"")
        parts = []
        for _n, _stream, text, run, _partial in lines:
            if run < min_run:
                continue
            parts.append(prefix + line_bytes(text) + b"\n")
        if parts:
            self.out.write(b"".join(parts))
            self.out.flush()


def _target(task: str, view: str, **query: object) -> str:
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return f"/v1/tasks/{quote(task, safe='')}/output?view={view}&{params}"


def run(args: argparse.Namespace) -> int:
    """Print the lines (then follow them with ``-f``)."""
    if args.since is not None and args.since != "last" and not args.since.isdigit():
        raise DevsterError("--since takes a run number or 'last'", ExitCode.USAGE)

    def body(client: Client) -> int:
        snapshot = client.json("GET", "/v1/state")
        check_task_names(args.tasks, snapshot)
        known = {t["name"]: t for t in snapshot["state"]["tasks"]}
        printer = _Printer(sys.stdout.buffer, list(args.tasks))
        cursors: dict[str, int] = {}
        for task in args.tasks:
            min_run = _min_run(args.since, known[task])
            if args.lines is not None:
                answer = client.json(
                    "GET", _target(task, args.view, tail=args.lines, limit=args.lines)
                )
                cursor = answer["end"] - len(answer["lines"])
            else:
                cursor = 0
            while True:
                answer = client.json("GET", _target(task, args.view, start=cursor, limit=BATCH))
                printer.emit(task, answer["lines"], min_run)
                if not answer["lines"]:
                    cursor = max(cursor, answer["end"])
                    break
                cursor = answer["lines"][-1][0] + 1
                if cursor >= answer["end"]:
                    break
            cursors[task] = cursor
        if not args.follow_lines:
            return ExitCode.OK
        import asyncio

        async def follow(aclient: AsyncClient, task: str) -> None:
            cursor = cursors[task]
            min_run = _min_run(args.since, known[task])
            while True:
                answer = await aclient.json(
                    "GET", _target(task, args.view, start=cursor, limit=BATCH, wait=FOLLOW_WAIT)
                )
                printer.emit(task, answer["lines"], min_run)
                if answer["lines"]:
                    cursor = answer["lines"][-1][0] + 1
                else:
                    cursor = max(cursor, answer["first"])

        async def main() -> None:
            aclient = AsyncClient(address_of(args), timeout=FOLLOW_WAIT + 10)
            await asyncio.gather(*(follow(aclient, task) for task in args.tasks))

        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            return ExitCode.SIGINT
        return ExitCode.OK

    return guarded(args, body)
