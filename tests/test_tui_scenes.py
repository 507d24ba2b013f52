"""Recorded cockpit scenes (event logs + output) and the helpers the TUI tests build apps from.

The files in tests/data/eventlogs are produced by :func:`record_scenes` with a fake clock
through the real Store, so they are deterministic; a test checks the committed files still
equal what the generator writes (regenerate with ``python -m tests.test_tui_scenes``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devster_tui.state.clock import FakeClock
from devster_tui.state.commands import Command, CommandResult
from devster_tui.state.eventlog import read_events
from devster_tui.state.events import Event, T
from devster_tui.state.output import OutputStore
from devster_tui.state.store import Store

EVENTLOGS = Path(__file__).parent / "data" / "eventlogs"
"""Where the recorded scenes live."""

START_MONO = 1000.0
START_WALL = 1_700_000_000.0


@dataclass
class RecordingController:
    """A controller that records every command and answers from a table."""

    commands: list[Command] = field(default_factory=list)
    """Commands received, in order."""
    refuse: dict[str, CommandResult] = field(default_factory=dict)
    """Action -> answer for actions that should not just succeed."""

    async def execute(self, command: Command) -> CommandResult:
        """Record ``command`` and answer."""
        self.commands.append(command)
        if command.action in self.refuse:
            return self.refuse[command.action]
        return CommandResult(True, "ok")


@dataclass
class Scene:
    """A store and output store rebuilt from a recording, plus a frozen clock reading."""

    store: Store
    """The replayed store."""
    output: OutputStore
    """The output store with the recorded lines."""
    now: float
    """Frozen monotonic time for uptimes."""

    def clock(self) -> float:
        """The frozen clock."""
        return self.now


class _Recorder:
    def __init__(self, project: str) -> None:
        self.clock = FakeClock(mono=START_MONO, wall=START_WALL)
        self.store = Store(clock=self.clock)
        self.output: list[dict[str, Any]] = []
        self.store.dispatch(
            T.ENGINE_STARTED,
            project=project,
            config_file=f"/srv/{project}/devster.yaml",
            pid=4242,
            tasks=[],
            version="0.1.0",
        )

    def ev(self, type_: str, task: str | None = None, after: float = 0.1, **data: Any) -> None:
        self.clock.advance(after)
        self.store.dispatch_raw(type_, task, **data)

    def define(self, name: str, **data: Any) -> None:
        base: dict[str, Any] = {
            "kind": "service",
            "depends_on": {},
            "triggers": [],
            "mode": "normal",
            "has_health": False,
            "ports": {},
            "host": None,
            "autostart": True,
            "restart_policy": "no",
            "stdin": [],
            "environment": None,
        }
        base.update(data)
        self.ev(T.TASK_DEFINED, name, after=0.0, **base)

    def run(self, name: str, pid: int, run: int = 1, reason: str = "start") -> None:
        self.ev(T.TASK_STARTING, name, run=run, reason=reason)
        self.ev(T.TASK_SPAWNED, name, pid=pid, pgid=pid, run=run, argv_summary=name)
        self.out(name, "marker", f"run {run}", run)

    def exit(self, name: str, run: int, code: int | None, signal: str | None = None) -> None:
        self.ev(
            T.TASK_EXITED,
            name,
            run=run,
            code=code,
            signal=signal,
            success=code == 0,
            duration=1.5,
            stopped=False,
            last_lines=[],
        )

    def out(self, task: str, stream: str, text: str | bytes, run: int = 1) -> None:
        raw = text if isinstance(text, bytes) else text.encode()
        # Raw bytes as latin-1 text: JSON-safe and byte-exact (invalid UTF-8 included).
        self.output.append(
            {"task": task, "stream": stream, "data": raw.decode("latin-1"), "run": run}
        )

    def write(self, name: str) -> None:
        EVENTLOGS.mkdir(parents=True, exist_ok=True)
        events = self.store.events_since(0)
        (EVENTLOGS / f"{name}.jsonl").write_text(
            "".join(e.to_json() + "\n" for e in events), encoding="utf-8"
        )
        (EVENTLOGS / f"{name}.output.jsonl").write_text(
            "".join(json.dumps(o, ensure_ascii=True) + "\n" for o in self.output),
            encoding="utf-8",
        )


def _main_scene() -> _Recorder:
    r = _Recorder("shop")
    r.define("build", kind="job", triggers=["src"])
    r.define("db", has_health=True, ports={"pg": 5432}, restart_policy="always")
    r.define(
        "api",
        depends_on={"build": "succeeded", "db": "healthy"},
        has_health=True,
        ports={"http": 8080},
        restart_policy="on-failure",
        config_json=json.dumps(
            {
                "cmd": ["python", "-m", "api", "--port", "8080"],
                "env": {"API_TOKEN": "s3cr3t-value", "LOG_LEVEL": "debug"},
                "database_url": "postgres://app:hunter2@db:5432/shop",
                "restart": {"policy": "on-failure", "max_restarts": 5},
            }
        ),
    )
    r.define("errors", depends_on={"api": "started"}, stdin=["api.stderr"])
    r.define(
        "integration",
        kind="job",
        depends_on={"api": "healthy"},
        triggers=["go-integration"],
    )
    r.define("prod-logs", mode="observe", environment="production", restart_policy="always")
    r.define("shell", stdin=["console"])
    r.run("build", 101)
    r.out("build", "stdout", "\x1b[1mcompiling\x1b[0m 12 modules")
    r.out("build", "stdout", "[bold]not markup[/bold] 10%\r50%\r100% done")
    r.ev(
        T.TASK_EXITED,
        "build",
        run=1,
        code=0,
        signal=None,
        success=True,
        duration=2.0,
        stopped=False,
        last_lines=[],
    )
    r.ev(T.TASK_SUCCEEDED, "build", run=1, duration=2.0)
    r.run("db", 102)
    r.out("db", "stdout", "database system is ready to accept connections")
    r.ev(T.TASK_HEALTH, "db", healthy=True, probe="health", detail="tcp 5432 ok", failures=0)
    r.run("api", 103)
    r.out("api", "stdout", "\x1b[32mINFO\x1b[0m listening on :8080")
    r.out("api", "stderr", "\x1b[31mERROR\x1b[0m upstream timeout \x1b]0;pwned\x07(title hidden)")
    r.exit("api", 1, 1)
    r.ev(T.TASK_BACKOFF, "api", delay=0.5, attempt=1)
    r.run("api", 104, run=2, reason="restart")
    r.out("api", "stdout", "\x1b[32mINFO\x1b[0m listening on :8080", run=2)
    r.out("api", "stderr", b"WARN slow query \xff\xfe bytes", run=2)
    r.out("api", "stdout", "GET /health 200", run=2)
    r.ev(T.TASK_HEALTH, "api", healthy=True, probe="health", detail="200 OK", failures=0)
    r.run("errors", 105)
    r.out("errors", "stdout", "ERROR upstream timeout")
    r.ev(
        T.TASK_GATE,
        "integration",
        observer="go-integration",
        prompt="Run integration tests?",
        waiting=True,
    )
    r.run("prod-logs", 106)
    r.out("prod-logs", "stdout", "2024-01-01T00:00:00Z app started")
    r.run("shell", 107)
    r.out("shell", "stdout", "> ")
    r.clock.advance(75.0)
    return r


def _failed_scene() -> _Recorder:
    r = _Recorder("flaky")
    r.define("web", restart_policy="on-failure", ports={"http": 8000})
    r.define("worker", depends_on={"web": "healthy"})
    for run in range(1, 5):
        r.run("web", 200 + run, run=run, reason="start" if run == 1 else "restart")
        r.out("web", "stdout", f"starting web (attempt {run})", run)
        r.out("web", "stderr", "Traceback (most recent call last):", run)
        r.out("web", "stderr", "  OSError: [Errno 98] Address already in use", run)
        r.exit("web", run, 1)
        if run < 4:
            r.ev(T.TASK_BACKOFF, "web", delay=0.5 * 2 ** (run - 1), attempt=run)
    r.ev(T.TASK_ALARM, "web", alarm="crash_loop", active=True, detail="4 restarts in 60s")
    r.ev(
        T.TASK_FAILED,
        "web",
        reason="restart limit reached (3 in 60s)",
        last_exit="exit 1",
        last_lines=["  OSError: [Errno 98] Address already in use"],
    )
    r.ev(T.TASK_BLOCKED, "worker", reason="web failed")
    r.clock.advance(5.0)
    return r


def _gate_scene() -> _Recorder:
    r = _Recorder("gated")
    r.define("unit", kind="job", triggers=["src"])
    r.define("integration", kind="job", triggers=["go"], depends_on={"unit": "succeeded"})
    r.run("unit", 301)
    r.out("unit", "stdout", "\x1b[32m42 passed\x1b[0m in 0.8s")
    r.ev(
        T.TASK_EXITED,
        "unit",
        run=1,
        code=0,
        signal=None,
        success=True,
        duration=0.8,
        stopped=False,
        last_lines=[],
    )
    r.ev(T.TASK_SUCCEEDED, "unit", run=1, duration=0.8)
    r.ev(T.TASK_GATE, "integration", observer="go", prompt="Run integration tests?", waiting=True)
    r.clock.advance(3.0)
    return r


def _big_scene() -> _Recorder:
    r = _Recorder("big")
    for i in range(50):
        deps = {}
        if i >= 5:
            deps[f"t{i - 5:02d}"] = "healthy" if i % 2 else "started"
        if i >= 10 and i % 3 == 0:
            deps[f"t{i - 10:02d}"] = "succeeded"
        stdin = [f"t{i - 1:02d}.stdout"] if i % 7 == 6 else []
        triggers = ["src"] if i % 5 == 0 else []
        r.define(f"t{i:02d}", depends_on=deps, stdin=stdin, triggers=triggers)
    for i in range(50):
        if i % 4 == 3:
            continue
        r.run(f"t{i:02d}", 1000 + i)
        if i % 9 == 8:
            r.exit(f"t{i:02d}", 1, 2)
            r.ev(T.TASK_FAILED, f"t{i:02d}", reason="exit 2", last_exit="exit 2", last_lines=[])
    r.clock.advance(30.0)
    return r


SCENES: dict[str, Callable[[], _Recorder]] = {
    "main": _main_scene,
    "failed": _failed_scene,
    "gate": _gate_scene,
    "big": _big_scene,
}
"""Scene name -> generator."""


def record_scenes() -> None:
    """(Re)write every recorded scene in tests/data/eventlogs."""
    for name, make in SCENES.items():
        make().write(name)


def load_scene(name: str, memory_lines: int = 10000) -> Scene:
    """Rebuild a recorded scene: events applied to a Store, lines appended to an OutputStore."""
    events, warnings = read_events(EVENTLOGS / f"{name}.jsonl")
    assert not warnings, warnings
    store = Store(clock=FakeClock(mono=START_MONO, wall=START_WALL))
    for event in events:
        store.apply(event)
    output = OutputStore(None, memory_lines=memory_lines)
    for raw in (EVENTLOGS / f"{name}.output.jsonl").read_text("utf-8").splitlines():
        item = json.loads(raw)
        data = item["data"].encode("latin-1")
        if item["stream"] == "marker":
            output.mark(item["task"], data.decode(), item["run"])
        else:
            output.append(item["task"], item["stream"], data + b"\n", item["run"])
    now = events[-1].mono + 30.0 if events else START_MONO
    return Scene(store, output, now)


def test_recorded_scenes_match_their_generator() -> None:
    for name, make in SCENES.items():
        recorder = make()
        expected = [e.to_json() for e in recorder.store.events_since(0)]
        recorded = (EVENTLOGS / f"{name}.jsonl").read_text("utf-8").splitlines()
        assert recorded == expected, f"{name}.jsonl is stale: python -m tests.test_tui_scenes"


def test_recorded_scenes_replay_without_warnings() -> None:
    for name in SCENES:
        scene = load_scene(name)
        assert scene.store.state.tasks, name
        assert all(isinstance(e, Event) for e in scene.store.events_since(0))


if __name__ == "__main__":
    record_scenes()
    sys.stdout.write(f"wrote {len(SCENES)} scenes to {EVENTLOGS}\n")
