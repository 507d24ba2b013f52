"""Lifecycle interleavings, exactly: a real engine over the scripted fake executor.

Each row is one scenario (project file, scripts, commands at times) and the events users
expect from it, in order, with process-compose / docker compose semantics and the rules
of docs/lifecycle.md.  Rows the current engine gets wrong are strict xfails naming the
issue 12 item: they turn into failures once the engine is fixed, and the mark goes.
Times are seconds after ``engine.started`` on virtual time, so they are exact.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import MappingProxyType

import pytest

from devster_tui.executors.fake import Run, SpawnFails, Trap
from devster_tui.state.commands import Action, Command
from devster_tui.state.events import Event, T
from devster_tui.state.model import Status
from tests.helpers.scenario import (
    At,
    Contains,
    Expect,
    Scenario,
    check,
    ev,
    first_mismatch,
    forbidden,
)

TERM = signal.SIGTERM
KILL = signal.SIGKILL
CRASH = Run(exit_at=0.05, code=1)
"""A process that fails 50 ms after its start, every time."""
FOREVER = Run()
"""A process that runs until a signal ends it."""


def cmd(at: float, action: Action, *tasks: str) -> At:
    """``action`` on ``tasks`` at ``at`` seconds, sent by the CLI."""
    return At(at, Command(action, tasks, by="cli"))


SCENARIOS = [
    Scenario(
        name="restart storm gives up at max_restarts with growing backoff",
        yaml="""
        tasks:
          svc:
            cmd: x
            restart:
              policy: on-failure
              max_restarts: 2
              window: 1m
              backoff: {initial: 100ms, factor: 2, jitter: 0}
        """,
        scripts={"svc": [CRASH]},
        expected=[
            ev(T.TASK_STARTING, "svc", run=1, reason="start", at=0),
            ev(T.TASK_EXITED, "svc", run=1, code=1, success=False, stopped=False, at=0.05),
            ev(T.TASK_BACKOFF, "svc", attempt=1, delay=0.1),
            ev(T.TASK_STARTING, "svc", run=2, at=0.15),
            ev(T.TASK_EXITED, "svc", run=2, code=1, success=False),
            ev(T.TASK_BACKOFF, "svc", attempt=2, delay=0.2),
            ev(T.TASK_STARTING, "svc", run=3, at=0.4),
            ev(T.TASK_EXITED, "svc", run=3, code=1),
            ev(T.TASK_FAILED, "svc", reason=Contains("restarted 2 times within 60s"), at=0.45),
        ],
        never=[ev(T.TASK_STARTING, "svc", run=4)],
        final={"svc": Status.FAILED},
    ),
    Scenario(
        name="a crash while stopping ends stopped, not restarted",
        yaml="""
        tasks:
          svc: {cmd: x, restart: {policy: always, backoff: {initial: 100ms}}, stop: {timeout: 5s}}
        """,
        # It ignores SIGTERM and crashes on its own 100 ms into the stop.
        scripts={"svc": [Run(exit_at=0.3, code=1, ignore=frozenset({TERM}))]},
        commands=[cmd(0.2, "stop", "svc")],
        expected=[
            ev(T.COMMAND, "svc", action="stop", at=0.2),
            ev(T.TASK_STOPPING, "svc", reason="user", signal="SIGTERM"),
            ev(T.TASK_EXITED, "svc", code=1, stopped=True, at=0.3),
            ev(T.TASK_STOPPED, "svc", reason="user"),
        ],
        never=[ev(T.TASK_BACKOFF, "svc"), ev(T.TASK_STARTING, "svc", run=2)],
        final={"svc": Status.STOPPED},
        signals={"svc": [TERM]},
    ),
    Scenario(
        name="a process that exits cleanly within the stop grace is not killed",
        yaml="tasks: {svc: {cmd: x, stop: {timeout: 5s}}}",
        scripts={"svc": [Run(traps={TERM: Trap(after=0.1, code=0)})]},
        commands=[cmd(0.2, "stop", "svc")],
        expected=[
            ev(T.TASK_STOPPING, "svc", reason="user", signal="SIGTERM", at=0.2),
            ev(T.TASK_EXITED, "svc", code=0, signal=None, stopped=True, at=0.3),
            ev(T.TASK_STOPPED, "svc", reason="user", at=0.3),
        ],
        final={"svc": Status.STOPPED},
        signals={"svc": [TERM]},
    ),
    Scenario(
        name="a process ignoring SIGTERM is killed when the stop grace ends",
        yaml="tasks: {svc: {cmd: x, stop: {timeout: 500ms}}}",
        scripts={"svc": [Run(ignore=frozenset({TERM}))]},
        commands=[cmd(0.1, "stop", "svc")],
        expected=[
            ev(T.TASK_STOPPING, "svc", reason="user", signal="SIGTERM", at=0.1),
            ev(T.TASK_EXITED, "svc", signal="SIGKILL", stopped=True, at=0.6),
            ev(T.TASK_STOPPED, "svc", reason="user", at=0.6),
        ],
        final={"svc": Status.STOPPED},
        signals={"svc": [TERM, KILL]},
    ),
    Scenario(
        name="a stop during backoff cancels the restart",
        yaml="""
        tasks:
          svc: {cmd: x, restart: {policy: always, backoff: {initial: 5s, jitter: 0}}}
        """,
        scripts={"svc": [Run(exit_at=0.1, code=1)]},
        commands=[cmd(1.0, "stop", "svc")],
        expected=[
            ev(T.TASK_BACKOFF, "svc", delay=5.0, at=0.1),
            ev(T.TASK_STOPPED, "svc", reason="user", at=1.0),
        ],
        never=[ev(T.TASK_STARTING, "svc", run=2)],
        final={"svc": Status.STOPPED},
    ),
    Scenario(
        name="a restart command during backoff starts at once",
        yaml="""
        tasks:
          svc: {cmd: x, restart: {policy: always, backoff: {initial: 5s, jitter: 0}}}
        """,
        scripts={"svc": [Run(exit_at=0.1, code=1), FOREVER]},
        commands=[cmd(1.0, "restart", "svc")],
        expected=[
            ev(T.TASK_BACKOFF, "svc", delay=5.0, at=0.1),
            ev(T.COMMAND, "svc", action="restart", at=1.0),
            ev(T.TASK_STARTING, "svc", run=2, at=1.0),
            ev(T.TASK_SPAWNED, "svc", run=2, at=1.0),
        ],
        never=[ev(T.TASK_STARTING, "svc", run=3)],
        final={"svc": Status.RUNNING},
    ),
    Scenario(
        name="a dependency restarted while its dependent spawns: the dependent runs after it",
        yaml="""
        tasks:
          db: {cmd: x}
          api: {cmd: y, depends_on: {db: {on_restart: restart}}}
        """,
        # api's spawn takes a second (a slow Docker daemon); db restarts half-way through.
        scripts={"db": [FOREVER], "api": [Run(spawn_delay=1.0)]},
        commands=[cmd(0.5, "restart", "db")],
        expected=[
            ev(T.TASK_STARTING, "api", run=1, at=0),
            ev(T.TASK_STARTING, "db", run=2, at=0.5),
            ev(T.TASK_SPAWNED, "db", run=2, at=0.5),
            ev(T.TASK_SPAWNED, "api", at=(1.0, 2.0)),
        ],
        never=[ev(T.TASK_STARTING, "api", run=3), ev(T.TASK_FAILED, "api")],
        final={"db": Status.RUNNING, "api": Status.RUNNING},
    ),
    Scenario(
        name="a stop during a slow spawn cancels the spawn",
        yaml="tasks: {svc: {cmd: x}}",
        scripts={"svc": [Run(spawn_delay=2.0)]},
        commands=[cmd(0.5, "stop", "svc")],
        expected=[
            ev(T.TASK_STARTING, "svc", run=1, at=0),
            ev(T.TASK_STOPPED, "svc", reason="user", at=0.5),
        ],
        never=[ev(T.TASK_SPAWNED, "svc")],
        final={"svc": Status.STOPPED},
    ),
    Scenario(
        name="a spawn failure fails the task and blocks its dependent",
        yaml="""
        tasks:
          broken: {cmd: x}
          web: {cmd: y, depends_on: [broken]}
        """,
        scripts={"broken": [SpawnFails("not found: x")], "web": [FOREVER]},
        expected=[
            ev(T.TASK_STARTING, "broken", run=1),
            ev(T.TASK_SPAWN_FAILED, "broken", error="not found: x", errno=2, at=0),
            ev(T.TASK_BLOCKED, "web", reason=Contains("broken"), at=0),
        ],
        never=[ev(T.TASK_STARTING, "broken", run=2), ev(T.TASK_STARTING, "web")],
        final={"broken": Status.FAILED, "web": Status.BLOCKED},
    ),
    Scenario(
        name="a job succeeds, then its dependent starts",
        yaml="""
        tasks:
          build: {cmd: x, kind: job}
          app: {cmd: y, depends_on: {build: {condition: succeeded}}}
        """,
        scripts={"build": [Run(exit_at=0.2)], "app": [FOREVER]},
        expected=[
            ev(T.TASK_STARTING, "build", run=1, at=0),
            ev(T.TASK_WAITING, "app", on=["build"]),
            ev(T.TASK_EXITED, "build", code=0, success=True, at=0.2),
            ev(T.TASK_STARTING, "app", run=1, at=0.2),
            ev(T.TASK_SPAWNED, "app", run=1, at=0.2),
        ],
        never=[ev(T.TASK_STARTING, "app", run=2), ev(T.TASK_STARTING, "build", run=2)],
        final={"build": Status.SUCCEEDED, "app": Status.RUNNING},
    ),
    Scenario(
        name="condition completed is met by a failed job",
        yaml="""
        tasks:
          migrate: {cmd: x, kind: job}
          api: {cmd: y, depends_on: {migrate: {condition: completed}}}
        """,
        scripts={"migrate": [Run(exit_at=0.2, code=3)], "api": [FOREVER]},
        expected=[
            ev(T.TASK_WAITING, "api", on=["migrate"], at=0),
            ev(T.TASK_EXITED, "migrate", code=3, success=False, at=0.2),
            ev(T.TASK_STARTING, "api", run=1, at=0.2),
            ev(T.TASK_SPAWNED, "api", run=1, at=0.2),
        ],
        never=[ev(T.TASK_BLOCKED, "api"), ev(T.TASK_STARTING, "migrate", run=2)],
        final={"api": Status.RUNNING},
    ),
    Scenario(
        name="condition completed is met by a job the user stopped",
        yaml="""
        tasks:
          migrate: {cmd: x, kind: job}
          api: {cmd: y, depends_on: {migrate: {condition: completed}}}
        """,
        scripts={"migrate": [FOREVER], "api": [FOREVER]},
        commands=[cmd(1.0, "stop", "migrate")],
        expected=[
            ev(T.TASK_WAITING, "api", on=["migrate"], at=0),
            ev(T.TASK_STOPPED, "migrate", reason="user", at=1.0),
            ev(T.TASK_STARTING, "api", run=1, at=1.0),
        ],
        never=[ev(T.TASK_BLOCKED, "api")],
        final={"migrate": Status.STOPPED, "api": Status.RUNNING},
    ),
    # Issue 12 item 1: the job's success used to restart a dependent that started beside it.
    Scenario(
        name="a service beside its migration job starts once and is not restarted",
        yaml="""
        tasks:
          migrate: {cmd: x, kind: job}
          api: {cmd: y, depends_on: [migrate]}
        """,
        scripts={"migrate": [Run(exit_at=0.2)], "api": [FOREVER]},
        expected=[
            ev(T.TASK_STARTING, "api", run=1, at=0),
            ev(T.TASK_EXITED, "migrate", code=0, success=True, at=0.2),
        ],
        never=[ev(T.TASK_STARTING, "api", run=2), ev(T.TASK_STOPPING, "api")],
        final={"migrate": Status.SUCCEEDED, "api": Status.RUNNING},
    ),
    # Issue 12 item 1: the dependent job used to run twice.
    Scenario(
        name="a job depending on a job that ran once runs once",
        yaml="""
        tasks:
          p2: {cmd: x, kind: job}
          p1: {cmd: y, kind: job, depends_on: [p2]}
        """,
        scripts={"p2": [Run(exit_at=0.2)], "p1": [Run(exit_at=0.5)]},
        expected=[
            ev(T.TASK_STARTING, "p1", run=1, at=0),
            ev(T.TASK_EXITED, "p2", success=True, at=0.2),
            ev(T.TASK_EXITED, "p1", run=1, success=True, stopped=False, at=0.5),
        ],
        never=[ev(T.TASK_STARTING, "p1", run=2)],
        final={"p1": Status.SUCCEEDED, "p2": Status.SUCCEEDED},
    ),
    # Issue 12 item 5: a restart after the limit used to fail at the next exit.
    Scenario(
        name="a restart command after the restart limit clears the counter",
        yaml="""
        tasks:
          svc:
            cmd: x
            restart:
              policy: on-failure
              max_restarts: 1
              window: 1m
              backoff: {initial: 100ms, jitter: 0}
        """,
        scripts={"svc": [CRASH]},
        commands=[cmd(2.0, "restart", "svc")],
        expected=[
            ev(T.TASK_FAILED, "svc", reason=Contains("restarted 1 times"), at=0.2),
            ev(T.TASK_STARTING, "svc", run=3, at=2.0),
            ev(T.TASK_EXITED, "svc", run=3, code=1, at=2.05),
            ev(T.TASK_BACKOFF, "svc", at=2.05),
            ev(T.TASK_STARTING, "svc", run=4, at=(2.1, 3.0)),
            ev(T.TASK_FAILED, "svc", reason=Contains("restarted 1 times"), at=(2.1, 3.0)),
        ],
        final={"svc": Status.FAILED},
    ),
    Scenario(
        name="a start command after the restart limit clears the counter",
        yaml="""
        tasks:
          svc:
            cmd: x
            restart:
              policy: on-failure
              max_restarts: 1
              window: 1m
              backoff: {initial: 100ms, jitter: 0}
        """,
        scripts={"svc": [CRASH]},
        commands=[cmd(2.0, "start", "svc")],
        expected=[
            ev(T.TASK_FAILED, "svc", at=0.2),
            ev(T.TASK_STARTING, "svc", run=3, at=2.0),
            ev(T.TASK_BACKOFF, "svc", at=2.05),
            ev(T.TASK_STARTING, "svc", run=4, at=(2.1, 3.0)),
        ],
    ),
    # Issue 12 item 6: a limit reached through clean exits used to end failed.
    Scenario(
        name="a job reaching max_restarts through clean exits succeeds",
        yaml="""
        tasks:
          job:
            cmd: x
            kind: job
            restart: {policy: always, max_restarts: 1, backoff: {initial: 100ms, jitter: 0}}
        """,
        scripts={"job": [Run(exit_at=0.05, code=0)]},
        expected=[
            ev(T.TASK_EXITED, "job", run=1, success=True, at=0.05),
            ev(T.TASK_STARTING, "job", run=2, at=0.15),
            ev(T.TASK_EXITED, "job", run=2, success=True, at=0.2),
        ],
        never=[ev(T.TASK_FAILED, "job"), ev(T.TASK_STARTING, "job", run=3)],
        final={"job": Status.SUCCEEDED},
    ),
    Scenario(
        name="success_exit_codes add to 0: exit 130 succeeds",
        yaml="tasks: {job: {cmd: x, kind: job, success_exit_codes: [130]}}",
        scripts={"job": [Run(exit_at=0.05, code=130)]},
        expected=[ev(T.TASK_EXITED, "job", code=130, success=True, at=0.05)],
        final={"job": Status.SUCCEEDED},
    ),
    # Issue 12 item 7: success_exit_codes: [130] used to make exit 0 a failure.
    Scenario(
        name="success_exit_codes add to 0: exit 0 still succeeds",
        yaml="tasks: {job: {cmd: x, kind: job, success_exit_codes: [130]}}",
        scripts={"job": [Run(exit_at=0.05, code=0)]},
        expected=[ev(T.TASK_EXITED, "job", code=0, success=True, at=0.05)],
        final={"job": Status.SUCCEEDED},
    ),
]


def _param(row: Scenario) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=row.bug)] if row.bug else []
    return pytest.param(row, id=row.name.replace(" ", "-"), marks=marks)


@pytest.mark.parametrize("row", [_param(row) for row in SCENARIOS])
def test_scenario(row: Scenario, tmp_path: Path) -> None:
    check(row, tmp_path)


# --------------------------------------------------------------------------- the matcher


def _event(seq: int, mono: float, type_: str, task: str | None, **data: object) -> Event:
    return Event(seq=seq, mono=mono, wall=mono, type=type_, task=task, data=MappingProxyType(data))


RECORDED = [
    _event(1, 10.0, T.TASK_STARTING, "svc", run=1, reason="start"),
    _event(2, 10.0, T.TASK_SPAWNED, "svc", run=1, pid=7),
    _event(3, 10.5, T.TASK_EXITED, "svc", run=1, code=1, success=False),
    _event(4, 10.5, T.TASK_FAILED, "svc", reason="restarted 2 times within 60s"),
]


def test_matcher_accepts_an_ordered_subsequence_with_events_between() -> None:
    expected = [
        ev(T.TASK_STARTING, "svc", run=1, at=0),
        ev(T.TASK_FAILED, "svc", reason=Contains("2 times"), at=(0.4, 0.6)),
    ]
    assert first_mismatch(RECORDED, expected, t0=10.0) is None


@pytest.mark.parametrize(
    "expected",
    [
        # the right events in the wrong order
        [ev(T.TASK_EXITED, "svc"), ev(T.TASK_STARTING, "svc")],
        # a payload value that differs
        [ev(T.TASK_EXITED, "svc", code=0)],
        # a payload key the event lacks
        [ev(T.TASK_SPAWNED, "svc", pgid=7)],
        # the right event for another task
        [ev(T.TASK_STARTING, "api")],
        # the right event at the wrong time
        [ev(T.TASK_EXITED, "svc", at=0.4)],
        # text that is not in the value
        [ev(T.TASK_FAILED, "svc", reason=Contains("3 times"))],
        # one event cannot match two expectations
        [ev(T.TASK_STARTING, "svc"), ev(T.TASK_STARTING, "svc")],
    ],
    ids=["order", "value", "missing-key", "task", "time", "contains", "reused"],
)
def test_matcher_rejects_what_did_not_happen(expected: list[Expect]) -> None:
    mismatch = first_mismatch(RECORDED, expected, t0=10.0)
    assert mismatch is not None
    assert "did not follow" in mismatch


def test_forbidden_events_are_found_anywhere() -> None:
    assert forbidden(RECORDED, [ev(T.TASK_STARTING, "svc", run=2)], t0=10.0) is None
    found = forbidden(RECORDED, [ev(T.TASK_SPAWNED, "svc", run=1)], t0=10.0)
    assert found is not None and "task.spawned" in found


def test_a_row_expecting_the_wrong_events_fails_with_the_timeline(tmp_path: Path) -> None:
    wrong = Scenario(
        name="a crash restarted by policy no (wrong on purpose)",
        yaml="tasks: {svc: {cmd: x}}",
        scripts={"svc": [CRASH]},
        expected=[ev(T.TASK_EXITED, "svc", code=1), ev(T.TASK_STARTING, "svc", run=2)],
        final={"svc": Status.RUNNING},
        signals={"svc": [TERM]},
    )
    with pytest.raises(AssertionError) as failure:
        check(wrong, tmp_path)
    text = str(failure.value)
    assert "expected event 2 of 2" in text
    assert "svc is exited" in text and "expected running" in text
    assert "svc received signals []," in text
    assert "task.exited" in text  # the recorded timeline is part of the message
