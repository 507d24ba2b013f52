"""Event payloads are typed, documented and decoded from old logs.

docs/events.md is regenerated from ``devster_tui.state.payloads`` and compared with the
committed page; every ``T`` type has a payload and a ``Store.dispatch`` overload; mypy
rejects a misspelt, missing or mistyped key, and the package's ``dispatch`` calls unpack
nothing mypy cannot check; every event a real engine (over the fake executor) sends fits
its payload type; the readers read only documented keys; and ``devster replay`` of a log
written before exits carried their outcome (no ``next``, no ``reset``, no stop ``detail``,
no ``was_running``) still ends in the right state table.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import UnionType
from typing import Any, NotRequired, Union, get_args, get_origin, get_type_hints

import pytest

from devster_tui.clients.headless import describe
from devster_tui.executors.fake import Run
from devster_tui.state import payloads
from devster_tui.state.clock import FakeClock
from devster_tui.state.commands import Command
from devster_tui.state.events import Event, T
from devster_tui.state.model import Status
from devster_tui.state.payloads import PAYLOADS, dispatch_overloads, documented_keys, markdown
from devster_tui.state.store import Store
from tests.helpers import devster_cli
from tests.helpers.scenario import At, Scenario, check, ev

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "events.md"
OLD_LOG = ROOT / "tests" / "data" / "events" / "pre-outcome"
PAYLOADS_SOURCE = Path(payloads.__file__).read_text(encoding="utf-8")


def event_types() -> set[str]:
    return {value for key, value in vars(T).items() if key.isupper() and isinstance(value, str)}


def test_docs_events_md_is_generated_from_the_payload_types() -> None:
    assert DOC.read_text(encoding="utf-8") == markdown(), (
        "docs/events.md is stale: python -m devster_tui.state.payloads --markdown > docs/events.md"
    )


def test_the_generator_cli_writes_the_page_and_rejects_other_arguments() -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devster_tui.state.payloads", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    written = run("--markdown")
    assert written.returncode == 0, written.stderr
    assert written.stdout == DOC.read_text(encoding="utf-8")
    wrong = run("--html")
    assert wrong.returncode == 64 and "usage:" in wrong.stderr and wrong.stdout == ""


def test_every_event_type_has_a_payload_and_a_dispatch_overload_and_vice_versa() -> None:
    assert set(PAYLOADS) == event_types()
    overloads = dispatch_overloads()
    assert set(overloads) == event_types()
    assert {t: name for t, (_, name) in overloads.items()} == {
        t: cls.__name__ for t, cls in PAYLOADS.items()
    }


@pytest.mark.parametrize("event_type", sorted(PAYLOADS))
def test_each_payload_documents_every_key_and_marks_optional_ones(event_type: str) -> None:
    cls = PAYLOADS[event_type]
    assert (cls.__doc__ or "").strip(), f"{cls.__name__} has no docstring"
    keys = documented_keys(PAYLOADS_SOURCE, cls.__name__)
    hints = get_type_hints(cls, include_extras=True)
    assert [k.name for k in keys] == list(hints)
    for key in keys:
        assert key.doc, f"{cls.__name__}.{key.name} has no docstring"
        assert key.required == (get_origin(hints[key.name]) is not NotRequired), key.name


def test_dispatch_and_dispatch_raw_record_the_payload_as_given() -> None:
    store = Store(clock=FakeClock())
    event = store.dispatch(
        T.TASK_STOPPING, "api", reason="restart", signal="SIGTERM", detail="restarting"
    )
    assert dict(event.data) == {"reason": "restart", "signal": "SIGTERM", "detail": "restarting"}
    raw = store.dispatch_raw("custom.type", "api", anything=[1])
    assert raw.type == "custom.type" and dict(raw.data) == {"anything": [1]}
    assert store.seq == 2


SNIPPET = """\
from __future__ import annotations

from devster_tui.state.events import T
from devster_tui.state.store import Store

store = Store()
store.dispatch(T.TASK_STOPPED, "api", reason="user")
store.dispatch(T.TASK_STOPPED, "api", reson="user")  # line 8: misspelt
store.dispatch(T.TASK_EXITED, "api", run=1, code=0)  # line 9: keys missing
store.dispatch(T.TASK_BACKOFF, "api", delay="soon", attempt=1)  # line 10: wrong type
store.dispatch(T.ENGINE_STOPPED, "api", exit_code=0)  # line 11: engine events have no task
store.dispatch(T.TASK_EXITED, "api", run=1, code=None, signal="SIGKILL", success=False,
               duration=1.0, stopped=True, next="stopped", last_lines=[], why="gone")
store.dispatch(T.ENGINE_STOPPED, exit_code=0)
store.dispatch_raw("custom.type", "api", anything=1)
"""


def test_mypy_rejects_a_misspelt_missing_or_mistyped_payload_key(tmp_path: Path) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET, encoding="utf-8")
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\n", encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--follow-imports=silent",
            "--no-error-summary",
            str(snippet),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    lines = sorted({int(line.split(":")[1]) for line in errors})
    assert lines == [8, 9, 10, 11], result.stdout + result.stderr
    assert any('"reson"' in line for line in errors)


READER_KEY = re.compile(
    r"""(?:_(?:str|opt_str|int|opt_int|float|bool|strs|str_map|int_map)\(data, |data\.get\()"""
    r"""["']([a-z_]+)["']"""
)
LEGACY_READS = {"task"}
"""Keys readers accept although no payload has them: ``orphan.killed`` once documented a
``task`` key the engine never sent (the task is the envelope's); readers fall back to it."""


@pytest.mark.parametrize("module", ["state/reducer.py", "clients/headless.py"])
def test_readers_read_only_documented_payload_keys(module: str) -> None:
    source = (ROOT / "devster_tui" / module).read_text(encoding="utf-8")
    read = set(READER_KEY.findall(source))
    assert len(read) > 10, "the pattern no longer finds the reads"
    documented = {key for cls in PAYLOADS.values() for key in get_type_hints(cls)}
    assert read - documented - LEGACY_READS == set()


def test_no_package_module_dispatches_unchecked_payloads() -> None:
    users = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "devster_tui").rglob("*.py")
        if "dispatch_raw(" in path.read_text(encoding="utf-8")
    ]
    assert users == ["devster_tui/state/store.py"]


def unchecked_unpacks(source: str) -> list[str]:
    """``**`` arguments of ``.dispatch(...)`` calls that mypy cannot check: anything but a
    variable annotated with a payload type or a call of a function returning one."""
    names = {cls.__name__ for cls in PAYLOADS.values()}
    tree = ast.parse(source)

    def typed(annotation: ast.expr | None) -> bool:
        return annotation is not None and ast.unparse(annotation).strip("'\"") in names

    variables = {
        node.target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and typed(node.annotation)
    }
    functions = {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and typed(node.returns)
    }
    variables |= {  # ``data = payload_function(...)``: mypy infers the payload type
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id in functions
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "dispatch"
        ):
            continue
        for keyword in node.keywords:
            value = keyword.value
            if keyword.arg is not None:
                continue
            if isinstance(value, ast.Name) and value.id in variables:
                continue
            if (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and value.func.id in functions
            ):
                continue
            found.append(f"line {node.lineno}: **{ast.unparse(value)}")
    return found


def test_the_unpack_check_finds_plain_dicts() -> None:
    source = (
        "from devster_tui.state.payloads import TaskStarting\n"
        "def go(store, flag):\n"
        "    extra = {'rset': True} if flag else {}\n"
        "    store.dispatch('task.starting', 'a', run=1, reason='x', **extra)\n"
        "    typed: TaskStarting = {'run': 1, 'reason': 'x'}\n"
        "    store.dispatch('task.starting', 'a', **typed)\n"
    )
    assert unchecked_unpacks(source) == ["line 4: **extra"]


def test_package_dispatch_calls_unpack_only_payload_typed_values() -> None:
    found = {
        path.relative_to(ROOT).as_posix(): unchecked
        for path in (ROOT / "devster_tui").rglob("*.py")
        if (unchecked := unchecked_unpacks(path.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_headless_names_the_task_of_an_ended_leftover_process() -> None:
    """Regression: the headless line said ``of task None`` (it read a ``task`` key the
    engine never sent; the task is the envelope's)."""
    store = Store(clock=FakeClock())
    event = store.dispatch(T.ORPHAN_KILLED, "api", pid=555, pgid=555)
    assert describe(event) == "ended leftover process 555 of task api"


# -- what a real engine sends ---------------------------------------------------------------------


def conforms(value: object, hint: Any) -> bool:
    """Whether a JSON value fits a payload annotation (``int | None``, ``list[str]``, ...)."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return True
    if origin is NotRequired:
        return conforms(value, args[0])
    if origin in (UnionType, Union):
        return any(conforms(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if origin is list:
        return isinstance(value, list) and all(conforms(item, args[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            conforms(k, args[0]) and conforms(v, args[1]) for k, v in value.items()
        )
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def payload_problems(event: Event) -> list[str]:
    """How ``event``'s data differs from its payload type (missing, extra, mistyped keys)."""
    cls = PAYLOADS[event.type]
    hints = get_type_hints(cls, include_extras=True)
    required = {k for k, h in hints.items() if get_origin(h) is not NotRequired}
    data = dict(event.data)
    problems = [f"missing {k}" for k in sorted(required - set(data))]
    problems += [f"extra {k}" for k in sorted(set(data) - set(hints))]
    problems += [
        f"{k}={data[k]!r} is not {hints[k]}"
        for k in sorted(set(data) & set(hints))
        if not conforms(data[k], hints[k])
    ]
    return problems


RESTARTED = Scenario(
    name="a restart command, a crash with backoff, a job and a user stop",
    yaml="""
    tasks:
      db: {cmd: x, health: {exec: check, interval: 1s}}
      migrate: {cmd: y, kind: job, depends_on: {db: {condition: healthy}}}
      api:
        cmd: z
        depends_on: {migrate: {condition: completed}}
        restart: {policy: always, backoff: {initial: 1s, jitter: 0}}
      worker: {cmd: w}
    """,
    scripts={
        "db": [Run()],
        "db:health": [Run(exit_at=0.0)],
        "migrate": [Run(exit_at=0.5, code=0)],
        "api": [Run(exit_at=0.2, code=1), Run(), Run()],
        "worker": [Run()],
    },
    commands=[
        At(3.0, Command("restart", ("api",), by="cli")),
        At(4.0, Command("stop", ("worker",))),
    ],
    expected=[
        ev(T.TASK_SUCCEEDED, "migrate"),
        ev(T.TASK_EXITED, "api", run=1, next="backoff", stopped=False),
        ev(T.TASK_BACKOFF, "api"),
        ev(T.TASK_SPAWNED, "api", run=2),
        ev(T.TASK_STOPPING, "api", reason="restart", detail="restarting", at=3.0),
        ev(T.TASK_EXITED, "api", run=2, next="start", stopped=True),
        ev(T.TASK_STARTING, "api", run=3, reason="restart", reset=True),
        ev(T.TASK_STOPPING, "worker", reason="user", at=4.0),
        ev(T.TASK_STOPPED, "worker", reason="user"),
    ],
    final={"api": Status.RUNNING, "migrate": Status.SUCCEEDED, "worker": Status.STOPPED},
    until=6.0,
)


def test_every_event_a_real_engine_sends_fits_its_payload_type(tmp_path: Path) -> None:
    played = check(RESTARTED, tmp_path)
    assert {e.type for e in played.events} >= {
        T.ENGINE_STARTED,
        T.TASK_DEFINED,
        T.TASK_STARTING,
        T.TASK_SPAWNED,
        T.TASK_EXITED,
        T.TASK_BACKOFF,
        T.TASK_SUCCEEDED,
        T.TASK_STOPPING,
        T.TASK_STOPPED,
        T.TASK_HEALTH,
        T.COMMAND,
    }
    problems = {
        f"{e.seq} {e.type} {e.task}": p for e in played.events if (p := payload_problems(e))
    }
    assert problems == {}
    exits = [dict(e.data) for e in played.events if e.type == T.TASK_EXITED]
    assert all("why" not in data for data in exits)  # only sent when the executor knows more
    starts = [dict(e.data) for e in played.events if e.type == T.TASK_STARTING]
    assert [data.get("reset") for data in starts if data["run"] == 3] == [True]
    assert all("reset" not in data for data in starts if data["run"] != 3)


def test_the_conformance_check_finds_wrong_payloads() -> None:
    store = Store(clock=FakeClock())
    event = store.dispatch_raw(T.TASK_EXITED, "a", run="1", code=None, stoped=True)
    assert payload_problems(event) == [
        "missing duration",
        "missing last_lines",
        "missing next",
        "missing signal",
        "missing stopped",
        "missing success",
        "extra stoped",
        "run='1' is not <class 'int'>",
    ]


# -- old logs ---------------------------------------------------------------------------------


def devster(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return devster_cli(*args, cwd=ROOT, env=env)


def old_events() -> list[dict[str, Any]]:
    (segment,) = OLD_LOG.glob("events-*.jsonl")
    lines = segment.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_the_old_log_fixture_is_in_the_previous_format() -> None:
    events = old_events()

    def of(kind: str) -> list[dict[str, Any]]:
        return [e["data"] for e in events if e["type"] == kind]

    assert of(T.TASK_EXITED) and all("next" not in d for d in of(T.TASK_EXITED))
    assert of(T.TASK_STARTING) and all("reset" not in d for d in of(T.TASK_STARTING))
    assert {"reason": "restart", "signal": "SIGTERM"} in of(T.TASK_STOPPING)
    assert of(T.TASK_STOPPED) and all("was_running" not in d for d in of(T.TASK_STOPPED))
    assert all("config" not in d for d in of(T.TASK_DEFINED))


def test_replay_of_a_log_from_before_exit_outcomes_ends_in_the_right_state() -> None:
    result = devster("replay", str(OLD_LOG))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout.splitlines()
    header = next(i for i, line in enumerate(out) if line.startswith("TASK "))
    assert out[header - 1] == "project oldshop, engine still running at the end of the log"
    rows = [line.split() for line in out[header + 1 :]]
    assert rows == [
        ["db", "healthy", "1", "0", "-"],
        # an old job exit (no "next") followed by task.succeeded ends succeeded
        ["migrate", "succeeded", "1", "0", "exit", "0"],
        # crash, backoff, a restart command (stopping "restart" without detail), run 3
        ["api", "running", "3", "2", "signal", "SIGTERM"],
        # a user stop: stopping, exit without "next", stopped without was_running
        ["worker", "stopped", "1", "0", "exit", "0", "user"],
    ]


def test_replay_json_of_the_old_log_keeps_every_exit() -> None:
    result = devster("replay", "--json", str(OLD_LOG))
    assert result.returncode == 0, result.stderr
    tasks = {task["name"]: task for task in json.loads(result.stdout)["tasks"]}
    api = tasks["api"]
    assert [(e["run"], e["code"], e["signal"]) for e in api["exits"]] == [
        (1, 1, None),
        (2, None, "SIGTERM"),
    ]
    assert api["pid"] == 106 and api["backoff_delay"] is None
    assert tasks["migrate"]["last_exit"]["success"] is True
    assert tasks["worker"]["reason"] == "user" and tasks["worker"]["pid"] is None
