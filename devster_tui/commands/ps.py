"""``devster ps [--json]``: the tasks of the running engine and their status."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from devster_tui.api.client import Client
from devster_tui.commands.clientopts import add_client_options, guarded
from devster_tui.errors import ExitCode
from devster_tui.state.selectors import format_duration

_LIVE = frozenset({"starting", "running", "healthy", "unhealthy", "stopping"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the client options and ``--json``."""
    add_client_options(parser)
    parser.add_argument("--json", action="store_true", help="print the full state as JSON")


def rows(snapshot: dict[str, Any]) -> list[tuple[str, ...]]:
    """Table rows (with the header) for a ``GET /v1/state`` answer."""
    now = float(snapshot.get("now", 0.0))
    out: list[tuple[str, ...]] = [
        ("TASK", "STATUS", "PID", "UPTIME", "RUNS", "RESTARTS", "HEALTH", "LAST EXIT", "REASON")
    ]
    for task in snapshot["state"]["tasks"]:
        started = task.get("started_mono")
        live = task["status"] in _LIVE
        uptime = format_duration(now - started) if live and started is not None else "-"
        healthy = task.get("healthy")
        health = "-" if healthy is None else ("ok" if healthy else "failing")
        last = task.get("last_exit")
        if last is None:
            last_text = "-"
        elif last.get("signal"):
            last_text = f"signal {last['signal']}"
        else:
            last_text = f"exit {last.get('code')}"
        out.append(
            (
                task["name"],
                task["status"],
                str(task["pid"]) if live and task.get("pid") else "-",
                uptime,
                str(task["run"]),
                str(task["restarts"]),
                health,
                last_text,
                str(task.get("reason", "")).replace("\n", " ")[:60],
            )
        )
    return out


def format_table(table: list[tuple[str, ...]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    lines = []
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Print the task table (or the JSON state)."""

    def body(client: Client) -> int:
        snapshot = client.json("GET", "/v1/state")
        if args.json:
            sys.stdout.write(json.dumps(snapshot["state"], indent=2, ensure_ascii=False) + "\n")
        else:
            state = snapshot["state"]
            sys.stdout.write(f"project {state['project']} (engine pid {state['pid']})\n")
            sys.stdout.write(format_table(rows(snapshot)))
        return ExitCode.OK

    return guarded(args, body)
