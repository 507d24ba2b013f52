"""Prometheus text exposition (format 0.0.4) of an engine's state and output counters."""

from __future__ import annotations

from collections.abc import Callable

from devster_tui.state.model import LIVE_STATUSES, EngineState, Status

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The ``Content-Type`` Prometheus expects."""


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(
    state: EngineState,
    stats: Callable[[str], tuple[int, int]],
    now_mono: float,
    *,
    events: int = 0,
) -> str:
    """The metrics page.

    Args:
        state: The engine state.
        stats: ``task -> (lines, bytes)`` of output received so far (``OutputStore.stats``).
        now_mono: The engine clock's monotonic reading, for uptimes.
        events: Events dispatched so far.

    Returns:
        The exposition text, ending with a newline.
    """
    out: list[str] = []

    def family(name: str, kind: str, text: str) -> None:
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {kind}")

    family("devster_engine_running", "gauge", "1 while the engine runs.")
    out.append(f"devster_engine_running {int(state.running and not state.stopping)}")
    family("devster_engine_events_total", "counter", "Events dispatched by the engine.")
    out.append(f"devster_engine_events_total {events}")
    tasks = list(state.tasks.values())
    family("devster_task_status", "gauge", "1 for the task's current status, 0 for the others.")
    for task in tasks:
        name = _label(task.name)
        for status in Status:
            value = 1 if task.status is status else 0
            out.append(f'devster_task_status{{task="{name}",status="{status.value}"}} {value}')
    family("devster_task_up", "gauge", "1 when a process of the task may be alive.")
    for task in tasks:
        out.append(
            f'devster_task_up{{task="{_label(task.name)}"}} {int(task.status in LIVE_STATUSES)}'
        )
    family("devster_task_runs_total", "counter", "Times the task was started.")
    for task in tasks:
        out.append(f'devster_task_runs_total{{task="{_label(task.name)}"}} {task.run}')
    family("devster_task_restarts_total", "counter", "Automatic and manual restarts.")
    for task in tasks:
        out.append(f'devster_task_restarts_total{{task="{_label(task.name)}"}} {task.restarts}')
    family(
        "devster_task_uptime_seconds", "gauge", "Seconds since the live run started (0 if none)."
    )
    for task in tasks:
        up = 0.0
        if task.started_mono is not None and task.status in LIVE_STATUSES:
            up = max(0.0, now_mono - task.started_mono)
        out.append(f'devster_task_uptime_seconds{{task="{_label(task.name)}"}} {up:.3f}')
    family(
        "devster_task_healthy",
        "gauge",
        "Readiness check result: 1 healthy, 0 unhealthy, -1 unknown or no check.",
    )
    for task in tasks:
        value = -1 if task.healthy is None else int(task.healthy)
        out.append(f'devster_task_healthy{{task="{_label(task.name)}"}} {value}')
    family("devster_task_output_lines_total", "counter", "Output lines received (both streams).")
    counts = {task.name: stats(task.name) for task in tasks}
    for task in tasks:
        out.append(
            f'devster_task_output_lines_total{{task="{_label(task.name)}"}} {counts[task.name][0]}'
        )
    family("devster_task_output_bytes_total", "counter", "Output bytes received (both streams).")
    for task in tasks:
        out.append(
            f'devster_task_output_bytes_total{{task="{_label(task.name)}"}} {counts[task.name][1]}'
        )
    return "\n".join(out) + "\n"
