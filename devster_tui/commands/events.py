"""``devster events [--follow] [--json]``: the engine's event envelopes, as lines or JSON."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from devster_tui.api.client import Client
from devster_tui.commands.clientopts import add_client_options, guarded
from devster_tui.errors import ExitCode

MAX_DATA = 120
"""Longest data column of a text row."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the client options, ``--follow``, ``--json`` and ``--since``."""
    add_client_options(parser)
    parser.add_argument(
        "--follow", action="store_true", help="keep printing new events (Ctrl-C ends)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON envelope per line")
    parser.add_argument(
        "--since", type=int, default=0, metavar="SEQ", help="only events after sequence SEQ"
    )


def format_event(raw: dict[str, Any]) -> str:
    """``HH:MM:SS.mmm  SEQ TYPE TASK key=value ...``."""
    wall = float(raw.get("wall", 0.0))
    stamp = time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall * 1000) % 1000:03d}"
    data = " ".join(
        f"{k}={json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v}"
        for k, v in dict(raw.get("data") or {}).items()
    ).replace("\n", "\\n")
    if len(data) > MAX_DATA:
        data = data[: MAX_DATA - 1] + "…"
    task = raw.get("task") or "-"
    return f"{stamp} {raw.get('seq', 0):>7} {raw.get('type', ''):<20} {task:<16} {data}".rstrip()


def run(args: argparse.Namespace) -> int:
    """Print the events held by the engine (and new ones with ``--follow``)."""

    def body(client: Client) -> int:
        out = sys.stdout
        target = f"/v1/events?since={args.since}" + ("&follow=1" if args.follow else "")
        if args.follow:
            client.timeout = None
            lines = client.stream(target)
        else:
            _status, data = client.request("GET", target)
            lines = iter(data.splitlines())
        for line in lines:
            if not line:
                continue
            if args.json:
                out.write(line.decode() + "\n")
            else:
                out.write(format_event(json.loads(line)) + "\n")
            if args.follow:
                out.flush()
        return ExitCode.OK

    try:
        return guarded(args, body)
    except KeyboardInterrupt:
        return ExitCode.SIGINT
