"""task.defined carries the resolved config (through mask_config) and console stdin."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import textwrap
from pathlib import Path

from rich.console import Console

from devster_tui.config.loader import load_project
from devster_tui.engine.masking import mask_config
from devster_tui.engine.supervisor import Engine
from devster_tui.state.events import Event, T
from devster_tui.state.model import EngineState
from devster_tui.state.reducer import reduce
from devster_tui.tui.screens.detail import defined_data, detail_renderable

PROJECT = """\
version: 1
project: cfg
tasks:
  shell:
    cmd: [PY, -c, "import sys; sys.stdin.read()"]
    stdin: console
    autostart: false
    env: {LOG_LEVEL: debug}
  tail:
    cmd: [PY, -c, "pass"]
    kind: job
    stdin: shell.stderr
    autostart: false
    restart: {policy: on-failure}
"""


def defined_events(tmp_path: Path) -> list[Event]:
    """The task.defined events of an engine started on PROJECT (nothing autostarts)."""
    file = tmp_path / "devster.yaml"
    file.write_text(textwrap.dedent(PROJECT).replace("PY", sys.executable))
    engine = Engine(load_project(file))

    async def body() -> list[Event]:
        await engine.start()
        try:
            return [e for e in engine.store.events_since(0) if e.type == T.TASK_DEFINED]
        finally:
            await engine.shutdown()
            await engine.close()

    return asyncio.run(asyncio.wait_for(body(), 30))


def test_mask_config_returns_the_values_in_new_containers() -> None:
    original = {"env": {"TOKEN": "abc"}, "cmd": ["a", "b"], "kind": "job", "n": 3}
    masked = mask_config(original)
    assert masked == original
    masked["env"]["TOKEN"] = "changed"
    masked["cmd"].append("c")
    assert original == {"env": {"TOKEN": "abc"}, "cmd": ["a", "b"], "kind": "job", "n": 3}


def test_mask_config_turns_tuples_into_json_lists() -> None:
    assert mask_config({"ports": (1, 2), "nested": {"t": ("x",)}}) == {
        "ports": [1, 2],
        "nested": {"t": ["x"]},
    }


def test_task_defined_carried_no_config_for_the_detail_view(tmp_path: Path) -> None:
    by_task = {e.task: e.data for e in defined_events(tmp_path)}
    shell = by_task["shell"]["config"]
    assert isinstance(shell, dict)
    assert shell["cmd"] == [sys.executable, "-c", "import sys; sys.stdin.read()"]
    assert shell["env"] == {"LOG_LEVEL": "debug"}
    assert shell["stdin"]["console"] is True
    assert shell["autostart"] is False
    assert "kind" not in shell, "defaults are left out"
    tail = by_task["tail"]["config"]
    assert tail["stdin"] == {"from": "shell.stderr"}, "keys are spelled as in the file"
    assert tail["restart"] == {"policy": "on-failure"}
    for data in by_task.values():
        assert json.loads(json.dumps(data["config"])) == data["config"], "JSON-able"


def test_console_stdin_task_was_announced_without_console(tmp_path: Path) -> None:
    by_task = {e.task: e.data for e in defined_events(tmp_path)}
    assert by_task["shell"]["stdin"] == ["console"]
    assert by_task["tail"]["stdin"] == ["shell.stderr"]


def test_detail_view_did_not_show_the_engine_config(tmp_path: Path) -> None:
    events = defined_events(tmp_path)
    data = defined_data(events, "shell")
    assert data["config"]["env"] == {"LOG_LEVEL": "debug"}
    state = EngineState()
    for event in events:
        state = reduce(state, event)
    task = state.tasks["shell"]
    assert task.stdin_from == ("console",)
    console = Console(width=120, record=True, color_system=None)
    console.print(detail_renderable(task, state, events, {}))
    text = console.export_text()
    config_part = text.split("Resolved config (secrets masked)", 1)[1].split("Last exits")[0]
    assert "LOG_LEVEL: " in config_part
    assert '"import sys; sys.stdin.read()"' in config_part
    assert "has_health" not in config_part, "the config, not the whole event data"
    assert re.search(r"^ stdin +console", text, re.MULTILINE)
