"""``devster replay LOG``: print the timeline of a recorded event log and the final state.

The state is rebuilt with the engine's own reducer, so what this prints is what every
client showed.  A damaged log (a torn last record after ``kill -9``) is reported on stderr
and does not change the exit code.  With ``--tui`` the log opens in the cockpit instead
(:mod:`devster_tui.tui.replay`), read-only, with keys to step and scrub through time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devster_tui.state.events import Event
    from devster_tui.state.model import EngineState

MAX_VALUE = 60
"""Longest value shown in a timeline row."""
MAX_DATA = 120
"""Longest data column in a timeline row."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``replay`` options."""
    parser.add_argument(
        "log",
        metavar="LOG",
        help="an event log directory (e.g. .devster/events) or one events-NNNNNN.jsonl segment",
    )
    parser.add_argument("--json", action="store_true", help="print only the final state, as JSON")
    parser.add_argument(
        "--no-timeline", action="store_true", help="print only the final state table"
    )
    parser.add_argument(
        "--tui",
        action="store_true",
        help="open the log in the cockpit, read-only, with keys to step and scrub through time",
    )
    parser.add_argument(
        "--jump", type=int, default=100, metavar="N", help="with --tui: events per < and >"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=5.0,
        metavar="S",
        help="with --tui: seconds per [ and ]",
    )
    parser.add_argument("--theme", metavar="NAME", help="with --tui: colour theme")


def _resolve(path: Path) -> Path:
    """A project state directory (``.devster``) holding ``events/`` means its event log."""
    from devster_tui.state.eventlog import segments

    if path.is_dir() and not segments(path) and segments(path / "events"):
        return path / "events"
    return path


def _value(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(_value(item) for item in value) + "]"
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = json.dumps(value)
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _data(data: Mapping[str, Any]) -> str:
    text = " ".join(f"{key}={_value(value)}" for key, value in data.items())
    return text if len(text) <= MAX_DATA else text[: MAX_DATA - 1] + "…"


def timeline(events: Iterable[Event]) -> list[str]:
    """Timeline rows: offset from the run's first event, seq, type, task, key data.

    Args:
        events: Events in order.
    """
    from devster_tui.state.events import T

    rows: list[str] = []
    origin: float | None = None
    for event in events:
        if event.type == T.ENGINE_STARTED or origin is None:
            origin = event.mono
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.wall))
            rows.append(f"-- {stamp} (seq {event.seq}) --")
        offset = event.mono - origin
        rows.append(
            f"{offset:+10.3f}s {event.seq:>7} {event.type:<20} {event.task or '-':<16} "
            f"{_data(event.data)}".rstrip()
        )
    return rows


def state_table(state: EngineState) -> list[str]:
    """The final state as a table: task, status, runs, restarts, last exit, reason.

    Args:
        state: The replayed state.
    """
    from devster_tui.state.selectors import last_exit_summary

    header = ("TASK", "STATUS", "RUNS", "RESTARTS", "LAST EXIT", "REASON")
    rows = [
        (
            task.name,
            task.status.value,
            str(task.run),
            str(task.restarts),
            last_exit_summary(task),
            task.reason.replace("\n", " ")[:MAX_VALUE],
        )
        for task in state.tasks.values()
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    summary = f"project {state.project or '-'}"
    if state.exit_code is not None:
        summary += f", engine exit code {state.exit_code}"
    elif state.running:
        summary += ", engine still running at the end of the log"
    return [summary, *lines]


def run(args: argparse.Namespace) -> int:
    """Read the log, print the timeline (unless ``--json``) and the final state, or open
    it in the cockpit (``--tui``)."""
    from devster_tui.state.eventlog import read_events, replay
    from devster_tui.state.selectors import state_to_dict

    path = _resolve(Path(args.log))
    if not path.exists():
        sys.stderr.write(f"devster replay: no such file or directory: {args.log}\n")
        return 1
    events, warnings = read_events(path)
    for warning in warnings:
        sys.stderr.write(f"devster replay: warning: {warning}\n")
    if args.tui:
        return _run_tui(args, path, events)
    state = replay(events)
    out = sys.stdout
    if args.json:
        out.write(json.dumps(state_to_dict(state), indent=2, ensure_ascii=False) + "\n")
        return 0
    if not args.no_timeline:
        for row in timeline(events):
            out.write(row + "\n")
        out.write("\n")
    for row in state_table(state):
        out.write(row + "\n")
    return 0


def _run_tui(args: argparse.Namespace, path: Path, events: list[Event]) -> int:
    """The cockpit over the log, opened at its last event."""
    from devster_tui.tui.replay import (
        ReplayApp,
        ReplayStore,
        logs_beside,
        recorded_output,
        task_names,
    )

    store = ReplayStore(events)
    store.seek(store.total)
    output = recorded_output(task_names(events), logs_beside(path))
    project = store.state.project or "devster"
    app = ReplayApp(
        store,
        output,
        title=f"devster · {project} (replay)",
        theme=args.theme,
        jump=args.jump,
        seconds=args.seconds,
    )
    app.run()
    return 0
