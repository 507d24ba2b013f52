"""The task detail view: status, resolved config (secrets masked), layers, exits, timeline."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from devster_tui.state.events import Event, T
from devster_tui.state.model import EngineState, TaskState
from devster_tui.state.selectors import format_duration
from devster_tui.tui.bridge import StateChange
from devster_tui.tui.themes import STATUS_GLYPHS, status_styles

MASK = "••••••"
"""What a secret value is shown as."""

SECRET_KEY = re.compile(
    r"(pass(word|phrase|wd)?|secret|token|api[_-]?key|private[_-]?key|credential|auth)",
    re.IGNORECASE,
)
"""Key names whose values are secrets."""

_SECRET_REF = re.compile(r"(?:[^$]|\$\{secret:[A-Za-z0-9_-]+\})*\$\{secret:[A-Za-z0-9_-]+\}[^$]*")
"""A text whose only ``$`` references are secret references (safe to show as written)."""

_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]+:)(?P<pw>[^@\s]+)(?=@)")

TIMELINE_MAX = 300
"""Newest events of the task shown in the timeline."""


def mask_secrets(value: Any, key: str = "") -> Any:
    """``value`` with secret-looking keys' values and URL passwords replaced by a mask."""
    if isinstance(value, Mapping):
        return {str(k): mask_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secrets(v, key) for v in value]
    if isinstance(value, str) and _SECRET_REF.fullmatch(value):
        return value  # a reference (``${secret:NAME}``) is shown as written, never a value
    if key and SECRET_KEY.search(key) and value not in (None, "", False, True):
        return MASK
    if isinstance(value, str):
        return _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, value)
    return value


def defined_data(events: Sequence[Event], task: str) -> Mapping[str, Any]:
    """The data of the task's newest ``task.defined`` event (``config_json`` decoded into
    ``config`` for event logs written before the engine sent ``config`` itself)."""
    for event in reversed(events):
        if event.type == T.TASK_DEFINED and event.task == task:
            data = dict(event.data)
            raw = data.pop("config_json", None)
            if isinstance(raw, str):
                try:
                    data["config"] = json.loads(raw)
                except ValueError:
                    data["config"] = raw
            return data
    return {}


def _event_summary(event: Event) -> str:
    skip = {"last_lines", "config", "config_json", "argv_summary"}
    parts = []
    for key, value in event.data.items():
        if key in skip:
            continue
        parts.append(f"{key}={mask_secrets(value, key)}")
    return " ".join(parts)


def _yaml_like(value: Any, indent: int = 0) -> list[str]:
    pad = "  " * indent
    if isinstance(value, Mapping):
        lines: list[str] = []
        for key, item in value.items():
            if isinstance(item, Mapping | list) and item:
                lines.append(f"{pad}{key}:")
                lines.extend(_yaml_like(item, indent + 1))
            else:
                lines.append(f"{pad}{key}: {json.dumps(item, ensure_ascii=False)}")
        return lines
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, Mapping | list) and item:
                sub = _yaml_like(item, indent + 1)
                lines.append(f"{pad}- {sub[0].lstrip()}")
                lines.extend(sub[1:])
            else:
                lines.append(f"{pad}- {json.dumps(item, ensure_ascii=False)}")
        return lines
    return [f"{pad}{json.dumps(value, ensure_ascii=False)}"]


def layers_text(data: Mapping[str, Any]) -> str:
    """The task's execution chain, outermost first (``local`` when none)."""
    config = data.get("config")
    layers: Any = data.get("layers")
    if layers is None and isinstance(config, Mapping):
        layers = config.get("layers")
    chain: list[str] = []
    if isinstance(layers, list):
        for layer in layers:
            if isinstance(layer, Mapping):
                for kind, spec in layer.items():
                    target = ""
                    if isinstance(spec, Mapping):
                        target = str(
                            spec.get("host") or spec.get("container") or spec.get("image") or ""
                        )
                    chain.append(f"{kind} {target}".strip())
            else:
                chain.append(str(layer))
    environment = data.get("environment")
    head = f"environment {environment}: " if environment else ""
    return head + (" → ".join(chain) if chain else "local")


def detail_renderable(
    task: TaskState, state: EngineState, events: Sequence[Event], styles: Mapping[Any, Any]
) -> RenderableType:
    """Everything about ``task`` as one Rich renderable."""
    data = defined_data(events, task.name)
    origin = events[0].wall if events else state.wall
    head = Text()
    head.append(f"{STATUS_GLYPHS.get(task.status, '?')} ", styles.get(task.status))
    head.append(task.name, "bold")
    head.append(f"  {task.status.value}", styles.get(task.status))
    head.append(f"  ({task.kind}, mode {task.mode})")
    facts = Table(box=None, show_header=False, padding=(0, 1))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    live = f"pid {task.pid}" if task.pid is not None else "no process"
    facts.add_row("reason", Text(task.reason or "—"))
    facts.add_row("process", Text(f"{live} · run {task.run} · restarts {task.restarts}"))
    health = {None: "no check / unknown", True: "healthy", False: "unhealthy"}[task.healthy]
    if task.health_detail:
        health += f" ({task.health_detail})"
    facts.add_row("health", Text(health + (" · log ready" if task.log_ready else "")))
    facts.add_row("layers", Text(layers_text(data)))
    if task.host:
        facts.add_row("host", Text(task.host))
    deps = ", ".join(f"{d} ({c})" for d, c in task.depends_on.items()) or "—"
    facts.add_row("depends on", Text(deps))
    facts.add_row("triggers", Text(", ".join(task.triggers) or "—"))
    facts.add_row("stdin", Text(", ".join(task.stdin_from) or "—"))
    facts.add_row("ports", Text(" ".join(f"{k}:{v}" for k, v in task.ports.items()) or "—"))
    toggles = (
        f"auto-restart {'on' if task.autorestart else 'off'} · "
        f"watching {'on' if task.watching else 'off'}"
    )
    facts.add_row("toggles", Text(toggles))
    if task.gate_prompt is not None:
        facts.add_row("gate", Text(f"waiting: {task.gate_prompt} (a approves)"))
    if task.alarms:
        facts.add_row("alarms", Text(", ".join(sorted(task.alarms))))
    if task.dropped_lines:
        facts.add_row("dropped", Text(f"{task.dropped_lines} lines dropped by a pipe"))

    resolved = data.get("config")
    config = mask_secrets(dict(resolved) if isinstance(resolved, Mapping) else dict(data))
    config_text = Text("\n".join(_yaml_like(config)) if config else "(not recorded)")

    exits = Table(box=None, padding=(0, 1), header_style="bold")
    for title in ("run", "result", "ok", "duration", "at"):
        exits.add_column(title)
    for info in reversed(task.exits[-10:]):
        exits.add_row(
            str(info.run),
            info.summary(),
            "yes" if info.success else "no",
            format_duration(info.duration) if info.duration >= 1 else f"{info.duration:.2f}s",
            f"+{info.wall - origin:.1f}s",
        )
    timeline = Table(box=None, padding=(0, 1), header_style="bold")
    for title in ("at", "seq", "event", "data"):
        timeline.add_column(title, no_wrap=title != "data")
    mine = [e for e in events if e.task == task.name][-TIMELINE_MAX:]
    for event in mine:
        timeline.add_row(
            f"+{event.wall - origin:.3f}s",
            str(event.seq),
            event.type,
            Text(_event_summary(event)),
        )
    return Group(
        head,
        Text(""),
        facts,
        Text(""),
        Text("Resolved config (secrets masked)", style="bold underline"),
        config_text,
        Text(""),
        Text("Last exits", style="bold underline"),
        exits if task.exits else Text("(none yet)"),
        Text(""),
        Text(f"Event timeline ({len(mine)} newest)", style="bold underline"),
        timeline,
    )


class DetailScreen(Screen[None]):
    """One task in depth; refreshed when its state changes; Esc returns."""

    DEFAULT_CSS = """
    DetailScreen #detail-title {
        height: 1;
        background: $primary-background;
        text-style: bold;
    }
    DetailScreen VerticalScroll {
        padding: 0 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "Back"),
    ]

    def __init__(self, task_name: str) -> None:
        super().__init__()
        self.task_name = task_name
        """The task shown."""
        self._shown: TaskState | None = None

    def compose(self) -> ComposeResult:
        """Title and the scrollable body."""
        yield Static(f" devster · task {self.task_name} (Esc returns)", id="detail-title")
        with VerticalScroll():
            yield Static("", id="detail-body")

    def on_mount(self) -> None:
        """Render the current state."""
        self._render_detail()

    def state_changed(self, change: StateChange) -> None:
        """Re-render when this task's state object changed (called by the pump)."""
        if self.task_name in change.changed:
            self._render_detail()

    def _render_detail(self) -> None:
        from devster_tui.tui.app import CockpitApp

        app = self.app
        if not isinstance(app, CockpitApp):
            return
        state = app.bridge.state
        task = state.tasks.get(self.task_name)
        body = self.query_one("#detail-body", Static)
        if task is None:
            body.update(Text(f"{self.task_name}: no such task"))
            return
        self._shown = task
        events = app.store.events_since(0)
        body.update(detail_renderable(task, state, events, status_styles(app.theme_variables)))
