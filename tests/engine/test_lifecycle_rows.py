"""Every row of docs/lifecycle.md's rule tables, carried out by a real engine.

tests/unit/test_lifecycle_tables.py shows that the tables are the pure functions of
``engine/policy.py``; this module shows that the :class:`~devster_tui.engine.supervisor.Engine`
asks them where it should and does what they answer.  For each row of the exit, condition,
dependency, trigger, stop, budget and lifetime tables there is one scenario or more (a
project file, a script per task for the fake executor, commands at times, on virtual time:
tests/helpers/scenario.py) whose events and statuses are what the row says.  A case names
its row by number and by the row's text, so a row that changes or moves, or a new row
without a scenario, fails :func:`test_every_row_has_an_engine_scenario`; a row no engine can
reach is listed in :data:`UNREACHABLE` with the reason.  Variants of a row (``-user``,
``-liveness``) cover the alternatives of its cells that an engine can produce; those it
cannot produce are listed in :data:`UNREACHABLE_VALUES` with the reason.  A row the engine
gets wrong is a strict xfail through the harness's ``Scenario.bug``.

Two things the harness has no field for are added by a subclass of the Engine that the
harness builds for these cases (:func:`play_case`): observer firings at given times, made
through ``engine.triggers.fire(observer, detail, kind)`` so that no real file has to change,
and a watch on ``Engine.wait_done(mode)`` for the lifetime table.  Times are seconds after
``engine.started``.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devster_tui.engine.policy import EngineMode, TriggerSource
from devster_tui.engine.supervisor import Engine
from devster_tui.executors.fake import Run, Script, SpawnFails
from devster_tui.state.commands import Action, Command
from devster_tui.state.events import T
from devster_tui.state.model import Status
from tests.helpers import scenario as harness
from tests.helpers.lifecycle_doc import cells, row_text
from tests.helpers.scenario import SLACK, At, Contains, Expect, Scenario, check, ev

TERM = signal.SIGTERM
FOREVER = Run()
"""A process that runs until a signal ends it."""
CRASH = Run(exit_at=0.05, code=1)
"""A process that fails 50 ms after its start, every time."""
PROBE_OK_THEN_FAIL = [Run(exit_at=0.0), Run(exit_at=0.0, code=1)]
"""An exec probe (``NAME:health``) that passes once, then fails every time."""
LIVENESS = "liveness: {exec: check, interval: 1s, retries: 1}"
"""A liveness probe run at 0 s (passing, with PROBE_OK_THEN_FAIL) and failing at 1 s."""

TABLES = ("exit", "condition", "dependency", "trigger", "stop", "budget", "lifetime")
"""The tables whose every row must have an engine scenario."""


def cmd(at: float, action: Action, *tasks: str, enabled: bool | None = None) -> At:
    """``action`` on ``tasks`` at ``at`` seconds, sent by the CLI."""
    return At(at, Command(action, tasks, by="cli", enabled=enabled))


@dataclass(frozen=True, slots=True)
class Fire:
    """Observer ``observer`` fires at ``at`` seconds (``engine.triggers.fire``)."""

    at: float
    """When."""
    observer: str
    """Which observer (it must trigger a task of the project)."""
    kind: TriggerSource
    """As what: ``files``, ``interval``, ``task``, ``log``."""
    detail: str = "fired by the test"
    """What happened, as the observer says it."""


@dataclass(frozen=True, slots=True)
class Lifetime:
    """When ``Engine.wait_done(mode)`` must return."""

    mode: EngineMode
    """How the engine runs."""
    ends_at: float | None
    """Seconds after ``engine.started`` (None: it must still wait at the scenario's end)."""


@dataclass(frozen=True)
class Case:
    """One row of a lifecycle table, and the engine scenario that carries it out."""

    table: str
    """The table's marker name in docs/lifecycle.md."""
    row: int
    """The 1-based row number in that table."""
    cells: str
    """The row as the page writes it (``a | b, c | result``): checked against the page."""
    scenario: Scenario
    """What is played and what must follow."""
    variant: str = ""
    """Which alternative of the row's cells this case takes (part of the test id)."""
    fires: Sequence[Fire] = ()
    """Observer firings during the scenario."""
    lifetime: Lifetime | None = None
    """What ``wait_done`` must do (lifetime rows)."""
    answers: Sequence[str] = ()
    """Text each command's answer must contain, in the order of ``scenario.commands``."""

    @property
    def result(self) -> str:
        """The row's result cell."""
        return self.cells.rpartition("|")[2].strip()

    @property
    def id(self) -> str:
        """``exit-row-4-backoff`` (plus ``-variant``)."""
        base = f"{self.table}-row-{self.row}-{self.result.replace(' ', '-')}"
        return f"{base}-{self.variant}" if self.variant else base


# --------------------------------------------------------------------------- exit

EXIT = [
    Case(
        "exit",
        1,
        "restart | * | * | * | * | start",
        Scenario(
            "a restart command stops the service and starts it again at once",
            yaml="tasks: {svc: {cmd: x}}",
            scripts={"svc": [FOREVER]},
            commands=[cmd(1.0, "restart", "svc")],
            expected=[
                ev(T.TASK_STOPPING, "svc", reason="restart", signal="SIGTERM", at=1.0),
                ev(T.TASK_EXITED, "svc", run=1, stopped=True, next="start", at=1.0),
                ev(T.TASK_STARTING, "svc", run=2, reason="restart", at=1.0),
                ev(T.TASK_SPAWNED, "svc", run=2, at=1.0),
            ],
            never=[ev(T.TASK_BACKOFF, "svc"), ev(T.TASK_STOPPED, "svc")],
            final={"svc": Status.RUNNING},
            signals={"svc": [TERM]},
            until=3.0,
        ),
    ),
    Case(
        "exit",
        2,
        "user, shutdown, dependency | * | * | * | * | stopped",
        Scenario(
            "a service with policy always stopped by the user stays stopped",
            yaml="tasks: {svc: {cmd: x, restart: {policy: always}}}",
            scripts={"svc": [FOREVER]},
            commands=[cmd(1.0, "stop", "svc")],
            expected=[
                ev(T.TASK_STOPPING, "svc", reason="user", at=1.0),
                ev(T.TASK_EXITED, "svc", run=1, stopped=True, next="stopped", at=1.0),
                ev(T.TASK_STOPPED, "svc", reason="user", at=1.0),
            ],
            never=[ev(T.TASK_BACKOFF, "svc"), ev(T.TASK_STARTING, "svc", run=2)],
            final={"svc": Status.STOPPED},
            until=5.0,
        ),
        variant="user",
    ),
    Case(
        "exit",
        2,
        "user, shutdown, dependency | * | * | * | * | stopped",
        Scenario(
            "the shutdown stops a service with policy always for good",
            yaml="tasks: {svc: {cmd: x, restart: {policy: always}}}",
            scripts={"svc": [FOREVER]},
            commands=[At(1.0, Command("shutdown", by="cli"))],
            expected=[
                ev(T.ENGINE_STOPPING, None, reason="request", at=1.0),
                ev(T.TASK_STOPPING, "svc", reason="shutdown", at=1.0),
                ev(T.TASK_EXITED, "svc", run=1, stopped=True, next="stopped", at=1.0),
                ev(T.TASK_STOPPED, "svc", reason="shutdown", at=1.0),
                ev(T.ENGINE_STOPPED, None, at=1.0),
            ],
            never=[ev(T.TASK_BACKOFF, "svc"), ev(T.TASK_STARTING, "svc", run=2)],
            final={"svc": Status.STOPPED},
            until=3.0,
        ),
        variant="shutdown",
    ),
    Case(
        "exit",
        2,
        "user, shutdown, dependency | * | * | * | * | stopped",
        Scenario(
            "a dependency's on_failure: stop stops a dependent with policy always for good",
            yaml="""
            tasks:
              db: {cmd: x, restart: {policy: on-failure, backoff: {initial: 1s, jitter: 0}}}
              api:
                cmd: y
                restart: {policy: always}
                depends_on: {db: {on_failure: stop}}
            """,
            scripts={"db": [Run(exit_at=0.5, code=1), FOREVER], "api": [FOREVER]},
            expected=[
                ev(T.TASK_EXITED, "db", run=1, code=1, next="backoff", at=0.5),
                ev(T.TASK_STOPPING, "api", reason="dependency", at=0.5),
                ev(T.TASK_EXITED, "api", run=1, stopped=True, next="stopped", at=0.5),
                ev(T.TASK_STOPPED, "api", reason="dependency", at=0.5),
            ],
            never=[ev(T.TASK_BACKOFF, "api"), ev(T.TASK_STARTING, "api", run=2)],
            final={"db": Status.RUNNING, "api": Status.STOPPED},
            until=3.0,
        ),
        variant="dependency",
    ),
    Case(
        "exit",
        3,
        "timeout | * | * | * | * | failed",
        Scenario(
            "a job over its timeout is stopped and fails, whatever its policy",
            yaml="tasks: {job: {cmd: x, kind: job, timeout: 1s, restart: {policy: on-failure}}}",
            scripts={"job": [FOREVER]},
            expected=[
                ev(T.TASK_STOPPING, "job", reason="timeout", signal="SIGTERM", at=1.0),
                ev(T.TASK_EXITED, "job", run=1, success=False, stopped=True, next="failed"),
                ev(T.TASK_FAILED, "job", reason=Contains("timed out after 1s"), at=1.0),
            ],
            never=[ev(T.TASK_BACKOFF, "job"), ev(T.TASK_STARTING, "job", run=2)],
            final={"job": Status.FAILED},
            signals={"job": [TERM]},
            until=5.0,
        ),
    ),
    Case(
        "exit",
        4,
        "none, liveness | yes | always | not reached | * | backoff",
        Scenario(
            "a service with policy always that exits 0 backs off and starts again",
            yaml="""
            tasks:
              svc: {cmd: x, restart: {policy: always, backoff: {initial: 1s, jitter: 0}}}
            """,
            scripts={"svc": [Run(exit_at=0.5), FOREVER]},
            expected=[
                ev(T.TASK_EXITED, "svc", run=1, code=0, success=True, next="backoff", at=0.5),
                ev(T.TASK_BACKOFF, "svc", delay=1.0, attempt=1, at=0.5),
                ev(T.TASK_STARTING, "svc", run=2, reason="restart", at=1.5),
            ],
            final={"svc": Status.RUNNING},
            until=3.0,
        ),
        variant="service",
    ),
    Case(
        "exit",
        4,
        "none, liveness | yes | always | not reached | * | backoff",
        Scenario(
            "a job with policy always that succeeds backs off and runs again",
            yaml="""
            tasks:
              job: {cmd: x, kind: job, restart: {policy: always, backoff: {initial: 1s, jitter: 0}}}
            """,
            scripts={"job": [Run(exit_at=0.5), FOREVER]},
            expected=[
                ev(T.TASK_EXITED, "job", run=1, code=0, success=True, next="backoff", at=0.5),
                ev(T.TASK_BACKOFF, "job", delay=1.0, attempt=1, at=0.5),
                ev(T.TASK_STARTING, "job", run=2, reason="restart", at=1.5),
            ],
            never=[ev(T.TASK_SUCCEEDED, "job")],
            final={"job": Status.RUNNING},
            until=3.0,
        ),
        variant="job",
    ),
    Case(
        "exit",
        5,
        "none, liveness | no | on-failure, always | not reached | * | backoff",
        Scenario(
            "a service with policy on-failure that exits 1 backs off and starts again",
            yaml="""
            tasks:
              svc: {cmd: x, restart: {policy: on-failure, backoff: {initial: 1s, jitter: 0}}}
            """,
            scripts={"svc": [Run(exit_at=0.5, code=1), FOREVER]},
            expected=[
                ev(T.TASK_EXITED, "svc", run=1, code=1, success=False, next="backoff", at=0.5),
                ev(T.TASK_BACKOFF, "svc", delay=1.0, attempt=1, at=0.5),
                ev(T.TASK_STARTING, "svc", run=2, reason="restart", at=1.5),
            ],
            final={"svc": Status.RUNNING},
            until=3.0,
        ),
        variant="on-failure",
    ),
    Case(
        "exit",
        5,
        "none, liveness | no | on-failure, always | not reached | * | backoff",
        Scenario(
            "a job with policy always that fails backs off and runs again",
            yaml="""
            tasks:
              job: {cmd: x, kind: job, restart: {policy: always, backoff: {initial: 1s, jitter: 0}}}
            """,
            scripts={"job": [Run(exit_at=0.5, code=2), FOREVER]},
            expected=[
                ev(T.TASK_EXITED, "job", run=1, code=2, success=False, next="backoff", at=0.5),
                ev(T.TASK_BACKOFF, "job", delay=1.0, attempt=1, at=0.5),
                ev(T.TASK_STARTING, "job", run=2, reason="restart", at=1.5),
            ],
            never=[ev(T.TASK_FAILED, "job")],
            final={"job": Status.RUNNING},
            until=3.0,
        ),
        variant="always",
    ),
    Case(
        "exit",
        5,
        "none, liveness | no | on-failure, always | not reached | * | backoff",
        Scenario(
            "a service stopped for failing liveness backs off and starts again",
            yaml=f"""
            tasks:
              svc:
                cmd: x
                restart: {{policy: on-failure, backoff: {{initial: 5s, jitter: 0}}}}
                {LIVENESS}
            """,
            scripts={"svc": [FOREVER], "svc:health": PROBE_OK_THEN_FAIL},
            expected=[
                ev(T.TASK_HEALTH, "svc", healthy=False, probe="liveness", at=1.0),
                ev(T.TASK_STOPPING, "svc", reason="liveness", signal="SIGTERM", at=1.0),
                ev(
                    T.TASK_EXITED,
                    "svc",
                    run=1,
                    signal="SIGTERM",
                    success=False,
                    stopped=True,
                    next="backoff",
                    at=1.0,
                ),
                ev(T.TASK_BACKOFF, "svc", delay=5.0, attempt=1, at=1.0),
                ev(T.TASK_STARTING, "svc", run=2, reason="restart", at=6.0),
            ],
            never=[ev(T.TASK_STOPPED, "svc"), ev(T.TASK_FAILED, "svc")],
            until=6.0,
        ),
        variant="liveness",
    ),
    Case(
        "exit",
        6,
        "none, liveness | yes | * | * | job | succeeded",
        Scenario(
            "a job with policy no that exits 0 succeeds",
            yaml="tasks: {job: {cmd: x, kind: job}}",
            scripts={"job": [Run(exit_at=0.5)]},
            expected=[
                ev(T.TASK_EXITED, "job", run=1, code=0, success=True, next="succeeded", at=0.5),
                ev(T.TASK_SUCCEEDED, "job", run=1, at=0.5),
            ],
            never=[ev(T.TASK_STARTING, "job", run=2), ev(T.TASK_FAILED, "job")],
            final={"job": Status.SUCCEEDED},
            until=3.0,
        ),
        variant="no",
    ),
    Case(
        "exit",
        6,
        "none, liveness | yes | * | * | job | succeeded",
        Scenario(
            "a job with policy always at its restart limit through clean exits succeeds",
            yaml="""
            tasks:
              job:
                cmd: x
                kind: job
                restart: {policy: always, max_restarts: 1, backoff: {initial: 100ms, jitter: 0}}
            """,
            scripts={"job": [Run(exit_at=0.05)]},
            expected=[
                ev(T.TASK_EXITED, "job", run=1, success=True, next="backoff", at=0.05),
                ev(T.TASK_EXITED, "job", run=2, success=True, next="succeeded", at=0.2),
                ev(T.TASK_SUCCEEDED, "job", run=2, at=0.2),
            ],
            never=[ev(T.TASK_STARTING, "job", run=3), ev(T.TASK_FAILED, "job")],
            final={"job": Status.SUCCEEDED},
            until=3.0,
        ),
        variant="limit-reached",
    ),
    Case(
        "exit",
        7,
        "none, liveness | yes | * | * | service | exited",
        Scenario(
            "a service with policy on-failure that exits 0 has exited",
            yaml="tasks: {svc: {cmd: x, restart: {policy: on-failure}}}",
            scripts={"svc": [Run(exit_at=0.5)]},
            expected=[
                ev(T.TASK_EXITED, "svc", run=1, code=0, success=True, next="exited", at=0.5),
            ],
            never=[
                ev(T.TASK_STARTING, "svc", run=2),
                ev(T.TASK_SUCCEEDED, "svc"),
                ev(T.TASK_FAILED, "svc"),
            ],
            final={"svc": Status.EXITED},
            until=3.0,
        ),
    ),
    Case(
        "exit",
        8,
        "none, liveness | no | on-failure, always | reached | * | failed",
        Scenario(
            "a crashing service at its restart limit fails",
            yaml="""
            tasks:
              svc:
                cmd: x
                restart:
                  policy: always
                  max_restarts: 1
                  window: 1m
                  backoff: {initial: 100ms, jitter: 0}
            """,
            scripts={"svc": [CRASH]},
            expected=[
                ev(T.TASK_EXITED, "svc", run=1, success=False, next="backoff", at=0.05),
                ev(T.TASK_EXITED, "svc", run=2, success=False, next="failed", at=0.2),
                ev(T.TASK_FAILED, "svc", reason=Contains("restarted 1 times within 60s"), at=0.2),
            ],
            never=[ev(T.TASK_STARTING, "svc", run=3)],
            final={"svc": Status.FAILED},
            until=3.0,
        ),
        variant="crash",
    ),
    Case(
        "exit",
        8,
        "none, liveness | no | on-failure, always | reached | * | failed",
        Scenario(
            "a service stopped for failing liveness with max_restarts 0 fails",
            yaml=f"""
            tasks:
              svc:
                cmd: x
                restart: {{policy: on-failure, max_restarts: 0}}
                {LIVENESS}
            """,
            scripts={"svc": [FOREVER], "svc:health": PROBE_OK_THEN_FAIL},
            expected=[
                ev(T.TASK_STOPPING, "svc", reason="liveness", at=1.0),
                ev(T.TASK_EXITED, "svc", run=1, stopped=True, next="failed", at=1.0),
                ev(T.TASK_FAILED, "svc", reason=Contains("max_restarts 0"), at=1.0),
            ],
            never=[ev(T.TASK_STARTING, "svc", run=2), ev(T.TASK_BACKOFF, "svc")],
            final={"svc": Status.FAILED},
            until=3.0,
        ),
        variant="liveness",
    ),
    Case(
        "exit",
        9,
        "none, liveness | no | no | * | job | failed",
        Scenario(
            "a job with policy no that exits 1 fails",
            yaml="tasks: {job: {cmd: x, kind: job}}",
            scripts={"job": [Run(exit_at=0.5, code=1)]},
            expected=[
                ev(T.TASK_EXITED, "job", run=1, code=1, success=False, next="failed", at=0.5),
                ev(T.TASK_FAILED, "job", reason="exit 1", at=0.5),
            ],
            never=[ev(T.TASK_STARTING, "job", run=2), ev(T.TASK_SUCCEEDED, "job")],
            final={"job": Status.FAILED},
            until=3.0,
        ),
        variant="exit-1",
    ),
    Case(
        "exit",
        10,
        "none, liveness | no | no | * | service | exited",
        Scenario(
            "a service with policy no that exits 1 has exited",
            yaml="tasks: {svc: {cmd: x}}",
            scripts={"svc": [Run(exit_at=0.5, code=1)]},
            expected=[
                ev(T.TASK_EXITED, "svc", run=1, code=1, success=False, next="exited", at=0.5),
            ],
            never=[ev(T.TASK_STARTING, "svc", run=2), ev(T.TASK_FAILED, "svc")],
            final={"svc": Status.EXITED},
            until=3.0,
        ),
        variant="exit-1",
    ),
    Case(
        "exit",
        10,
        "none, liveness | no | no | * | service | exited",
        Scenario(
            "a service with policy no stopped for failing liveness has exited",
            yaml=f"""
            tasks:
              svc:
                cmd: x
                {LIVENESS}
            """,
            scripts={"svc": [FOREVER], "svc:health": PROBE_OK_THEN_FAIL},
            expected=[
                ev(T.TASK_STOPPING, "svc", reason="liveness", at=1.0),
                ev(T.TASK_EXITED, "svc", run=1, stopped=True, next="exited", at=1.0),
            ],
            never=[
                ev(T.TASK_STARTING, "svc", run=2),
                ev(T.TASK_FAILED, "svc"),
                ev(T.TASK_STOPPED, "svc"),
            ],
            final={"svc": Status.EXITED},
            until=3.0,
        ),
        variant="liveness",
    ),
]

# --------------------------------------------------------------------------- condition

_APP = "app: {cmd: y, depends_on: {dep: {condition: %s}}}"
"""A dependent ``app`` with one edge to ``dep`` (``%s``: the condition)."""


def _waits_then_starts(name: str, condition: str, dep: str, script: Run, at: float) -> Scenario:
    """``app`` waits for ``dep`` (``dep``: its YAML) and starts at ``at``."""
    return Scenario(
        name,
        yaml=f"tasks:\n  dep: {dep}\n  {_APP % condition}\n",
        scripts={"dep": [script], "app": [FOREVER]},
        expected=[
            ev(T.TASK_WAITING, "app", on=["dep"], at=0),
            ev(T.TASK_STARTING, "app", run=1, at=at),
            ev(T.TASK_SPAWNED, "app", run=1, at=at),
        ],
        never=[ev(T.TASK_BLOCKED, "app"), ev(T.TASK_STARTING, "dep", run=2)],
        final={"app": Status.RUNNING},
        until=3.0,
    )


def _waits_then_blocked(
    name: str, condition: str, dep: str, script: Run | SpawnFails, at: float, why: str
) -> Scenario:
    """``app`` waits for ``dep`` and is blocked at ``at``, the reason containing ``why``."""
    return Scenario(
        name,
        yaml=f"tasks:\n  dep: {dep}\n  {_APP % condition}\n",
        scripts={"dep": [script], "app": [FOREVER]},
        expected=[ev(T.TASK_BLOCKED, "app", reason=Contains(why), on=["dep"], at=at)],
        never=[ev(T.TASK_STARTING, "app")],
        final={"app": Status.BLOCKED},
        until=3.0,
    )


CONDITION = [
    Case(
        "condition",
        1,
        "started | * | running, healthy, unhealthy | * | met",
        _waits_then_starts(
            "a dependent of a slow-spawning service starts once the service runs",
            "started",
            "{cmd: x}",
            Run(spawn_delay=0.5),
            at=0.5,
        ),
    ),
    Case(
        "condition",
        2,
        "started | job | succeeded, exited, stopped | * | met",
        Scenario(
            "a dependent started after its job succeeded starts at once, the job stays",
            yaml="""
            tasks:
              dep: {cmd: x, kind: job}
              app: {cmd: y, autostart: false, depends_on: [dep]}
            """,
            scripts={"dep": [Run(exit_at=0.2)], "app": [FOREVER]},
            commands=[cmd(1.0, "start", "app")],
            expected=[
                ev(T.TASK_SUCCEEDED, "dep", at=0.2),
                ev(T.TASK_STARTING, "app", run=1, at=1.0),
                ev(T.TASK_SPAWNED, "app", run=1, at=1.0),
            ],
            never=[
                ev(T.TASK_WAITING, "app"),
                ev(T.TASK_BLOCKED, "app"),
                ev(T.TASK_STARTING, "dep", run=2),
            ],
            final={"dep": Status.SUCCEEDED, "app": Status.RUNNING},
            until=3.0,
        ),
        variant="succeeded",
    ),
    Case(
        "condition",
        2,
        "started | job | succeeded, exited, stopped | * | met",
        Scenario(
            "a job stopped while it waited lets its dependent (condition started) start",
            yaml="""
            tasks:
              base: {cmd: b, kind: job}
              dep: {cmd: x, kind: job, depends_on: {base: {condition: succeeded}}}
              app: {cmd: y, depends_on: [dep]}
            """,
            scripts={"base": [FOREVER], "dep": [FOREVER], "app": [FOREVER]},
            commands=[cmd(1.0, "stop", "dep")],
            expected=[
                ev(T.TASK_WAITING, "app", on=["dep"], at=0),
                ev(T.TASK_STOPPED, "dep", reason="user", at=1.0),
                ev(T.TASK_STARTING, "app", run=1, at=1.0),
            ],
            never=[ev(T.TASK_BLOCKED, "app"), ev(T.TASK_STARTING, "dep")],
            final={"dep": Status.STOPPED, "app": Status.RUNNING},
            until=3.0,
        ),
        variant="stopped",
    ),
    Case(
        "condition",
        3,
        "healthy | * | healthy | * | met",
        _waits_then_starts(
            "a dependent (condition healthy) starts when its dependency's health passes",
            "healthy",
            "{cmd: x, health: {log: ready}}",
            Run(output=[(0.5, "stdout", b"ready\n")]),
            at=0.5,
        ),
    ),
    Case(
        "condition",
        4,
        "completed | * | succeeded, exited, stopped | * | met",
        _waits_then_starts(
            "a dependent (condition completed) starts when its job succeeds",
            "completed",
            "{cmd: x, kind: job}",
            Run(exit_at=0.5),
            at=0.5,
        ),
        variant="succeeded",
    ),
    Case(
        "condition",
        4,
        "completed | * | succeeded, exited, stopped | * | met",
        Scenario(
            "a dependent (condition completed) starts when its job is stopped",
            yaml=f"tasks:\n  dep: {{cmd: x, kind: job}}\n  {_APP % 'completed'}\n",
            scripts={"dep": [FOREVER], "app": [FOREVER]},
            commands=[cmd(1.0, "stop", "dep")],
            expected=[
                ev(T.TASK_WAITING, "app", on=["dep"], at=0),
                ev(T.TASK_STOPPED, "dep", reason="user", at=1.0),
                ev(T.TASK_STARTING, "app", run=1, at=1.0),
            ],
            never=[ev(T.TASK_BLOCKED, "app")],
            final={"dep": Status.STOPPED, "app": Status.RUNNING},
            until=3.0,
        ),
        variant="stopped",
    ),
    Case(
        "condition",
        5,
        "completed | * | failed | yes | met",
        _waits_then_starts(
            "a dependent (condition completed) starts when its job fails",
            "completed",
            "{cmd: x, kind: job}",
            Run(exit_at=0.5, code=3),
            at=0.5,
        ),
    ),
    Case(
        "condition",
        6,
        "succeeded | * | succeeded | * | met",
        _waits_then_starts(
            "a dependent (condition succeeded) starts when its job succeeds",
            "succeeded",
            "{cmd: x, kind: job}",
            Run(exit_at=0.5),
            at=0.5,
        ),
    ),
    Case(
        "condition",
        8,
        "* | * | failed, blocked, stopped | * | impossible",
        _waits_then_blocked(
            "a dependent (condition completed) of a job that could not start is blocked",
            "completed",
            "{cmd: x, kind: job}",
            SpawnFails("not found: x"),
            at=0,
            why="dependency dep failed",
        ),
        variant="failed-never-ran",
    ),
    Case(
        "condition",
        8,
        "* | * | failed, blocked, stopped | * | impossible",
        _waits_then_blocked(
            "a dependent (condition succeeded) of a job that failed is blocked",
            "succeeded",
            "{cmd: x, kind: job}",
            Run(exit_at=0.5, code=1),
            at=0.5,
            why="dependency dep failed",
        ),
        variant="failed",
    ),
    Case(
        "condition",
        8,
        "* | * | failed, blocked, stopped | * | impossible",
        Scenario(
            "a dependent of a blocked task is blocked",
            yaml=f"""
            tasks:
              base: {{cmd: b}}
              dep: {{cmd: x, depends_on: [base]}}
              {_APP % "started"}
            """,
            scripts={"base": [SpawnFails("not found: b")], "dep": [FOREVER], "app": [FOREVER]},
            expected=[
                ev(T.TASK_BLOCKED, "dep", on=["base"], at=0),
                ev(T.TASK_BLOCKED, "app", reason=Contains("dependency dep blocked"), at=0),
            ],
            never=[ev(T.TASK_STARTING, "app"), ev(T.TASK_STARTING, "dep")],
            final={"dep": Status.BLOCKED, "app": Status.BLOCKED},
            until=3.0,
        ),
        variant="blocked",
    ),
    Case(
        "condition",
        8,
        "* | * | failed, blocked, stopped | * | impossible",
        Scenario(
            "a dependent (condition succeeded) of a job the user stopped is blocked",
            yaml=f"tasks:\n  dep: {{cmd: x, kind: job}}\n  {_APP % 'succeeded'}\n",
            scripts={"dep": [FOREVER], "app": [FOREVER]},
            commands=[cmd(1.0, "stop", "dep")],
            expected=[
                ev(T.TASK_STOPPED, "dep", reason="user", at=1.0),
                ev(T.TASK_BLOCKED, "app", reason=Contains("dependency dep stopped"), at=1.0),
            ],
            never=[ev(T.TASK_STARTING, "app")],
            final={"app": Status.BLOCKED},
            until=3.0,
        ),
        variant="stopped",
    ),
    Case(
        "condition",
        9,
        "started, healthy | * | exited | * | impossible",
        _waits_then_blocked(
            "a dependent (condition healthy) of a service that exited unhealthy is blocked",
            "healthy",
            "{cmd: x, health: {log: ready}}",
            Run(exit_at=0.5),
            at=0.5,
            why="dependency dep exited",
        ),
        variant="healthy",
    ),
    Case(
        "condition",
        9,
        "started, healthy | * | exited | * | impossible",
        Scenario(
            "a dependent started after its service exited is blocked, the service stays",
            yaml="""
            tasks:
              dep: {cmd: x}
              app: {cmd: y, autostart: false, depends_on: [dep]}
            """,
            scripts={"dep": [Run(exit_at=0.2)], "app": [FOREVER]},
            commands=[cmd(1.0, "start", "app")],
            expected=[
                ev(T.TASK_EXITED, "dep", next="exited", at=0.2),
                ev(T.TASK_BLOCKED, "app", reason=Contains("dependency dep exited"), at=1.0),
            ],
            never=[ev(T.TASK_STARTING, "app"), ev(T.TASK_STARTING, "dep", run=2)],
            final={"dep": Status.EXITED, "app": Status.BLOCKED},
            until=3.0,
        ),
        variant="started",
    ),
    Case(
        "condition",
        10,
        "* | * | * | * | wait",
        Scenario(
            "a dependent (condition succeeded) of a job still running waits",
            yaml=f"tasks:\n  dep: {{cmd: x, kind: job}}\n  {_APP % 'succeeded'}\n",
            scripts={"dep": [FOREVER], "app": [FOREVER]},
            expected=[ev(T.TASK_WAITING, "app", on=["dep"], at=0)],
            never=[ev(T.TASK_STARTING, "app"), ev(T.TASK_BLOCKED, "app")],
            final={"dep": Status.RUNNING, "app": Status.WAITING},
            until=30.0,
        ),
    ),
]

# --------------------------------------------------------------------------- dependency

_DB_CRASHES = "db: {cmd: x, restart: {policy: on-failure, backoff: {initial: 1s, jitter: 0}}}"
"""A service ``db`` whose run 1 fails at 0.5 s (with its script) and that runs again at 1.5 s."""


def _db_fails(
    name: str,
    edge: str,
    expected: Sequence[Expect],
    never: Sequence[Expect],
    final: Mapping[str, Status],
) -> Scenario:
    """``db`` fails at 0.5 s beside a live ``api`` whose edge to it is ``edge``."""
    return Scenario(
        name,
        yaml=f"""
        tasks:
          {_DB_CRASHES}
          api: {{cmd: y, depends_on: {{db: {edge}}}}}
        """,
        scripts={"db": [Run(exit_at=0.5, code=1), FOREVER], "api": [FOREVER]},
        expected=[ev(T.TASK_EXITED, "db", run=1, next="backoff", at=0.5), *expected],
        never=never,
        final=final,
        until=3.0,
    )


def _rerun(
    name: str,
    edge: str,
    dep: str,
    expected: Sequence[Expect],
    never: Sequence[Expect],
    final: Mapping[str, Status],
) -> Scenario:
    """``dep`` (a job whose runs take 0.2 s, or a service) runs again at 1 s (a restart
    command) beside a live ``api`` whose edge is ``edge``."""
    job = dep == "job"
    return Scenario(
        name,
        yaml=f"""
        tasks:
          dep: {{cmd: x, kind: {dep}}}
          api: {{cmd: y, depends_on: {{dep: {edge}}}}}
        """,
        scripts={"dep": [Run(exit_at=0.2) if job else FOREVER], "api": [FOREVER]},
        commands=[cmd(1.0, "restart", "dep")],
        expected=[
            ev(T.TASK_STARTING, "api", run=1, at=0.2 if job else 0),
            ev(T.TASK_STARTING, "dep", run=2, at=1.0),
            *expected,
        ],
        never=never,
        final=final,
        until=3.0,
    )


DEPENDENCY = [
    Case(
        "dependency",
        1,
        "* | * | * | * | * | no | none",
        Scenario(
            "a dependency restarting while its dependent backs off leaves the backoff alone",
            yaml="""
            tasks:
              db: {cmd: x}
              api:
                cmd: y
                restart: {policy: always, backoff: {initial: 5s, jitter: 0}}
                depends_on: {db: {on_restart: restart}}
            """,
            scripts={"db": [FOREVER], "api": [Run(exit_at=0.1, code=1), FOREVER]},
            commands=[cmd(1.0, "restart", "db")],
            expected=[
                ev(T.TASK_BACKOFF, "api", delay=5.0, at=0.1),
                ev(T.TASK_STARTING, "db", run=2, at=1.0),
                ev(T.TASK_STARTING, "api", run=2, reason="restart", at=5.1),
            ],
            never=[
                ev(T.TASK_STARTING, "api", run=2, at=(0.2, 5.0)),
                ev(T.TASK_STARTING, "api", run=3),
            ],
            final={"db": Status.RUNNING, "api": Status.RUNNING},
            until=6.0,
        ),
    ),
    Case(
        "dependency",
        2,
        "failed | * | * | * | restart | yes | restart",
        _db_fails(
            "a dependency's failure restarts a dependent with on_failure: restart",
            "{on_failure: restart}",
            [
                ev(T.TASK_STOPPING, "api", reason="restart", at=0.5),
                ev(T.TASK_EXITED, "api", run=1, next="start", at=0.5),
                # Its new run waits for db (condition started) to run again.
                ev(T.TASK_WAITING, "api", on=["db"], at=0.5),
                ev(T.TASK_STARTING, "db", run=2, at=1.5),
                ev(T.TASK_STARTING, "api", run=2, reason="dependency db failed", at=1.5),
                ev(T.TASK_SPAWNED, "api", run=2, at=1.5),
            ],
            never=[ev(T.TASK_STARTING, "api", run=3)],
            final={"db": Status.RUNNING, "api": Status.RUNNING},
        ),
    ),
    Case(
        "dependency",
        3,
        "failed | * | * | * | stop | yes | stop",
        _db_fails(
            "a dependency's failure stops a dependent with on_failure: stop",
            "{on_failure: stop}",
            [
                ev(T.TASK_STOPPING, "api", reason="dependency", at=0.5),
                ev(T.TASK_STOPPED, "api", reason="dependency", at=0.5),
                ev(T.TASK_STARTING, "db", run=2, at=1.5),
            ],
            never=[ev(T.TASK_STARTING, "api", run=2)],
            final={"db": Status.RUNNING, "api": Status.STOPPED},
        ),
    ),
    Case(
        "dependency",
        4,
        "failed | * | * | * | ignore | yes | none",
        _db_fails(
            "a dependency's failure leaves a dependent with on_failure: ignore running",
            "{on_failure: ignore}",
            [ev(T.TASK_STARTING, "db", run=2, at=1.5)],
            never=[ev(T.TASK_STOPPING, "api"), ev(T.TASK_STARTING, "api", run=2)],
            final={"db": Status.RUNNING, "api": Status.RUNNING},
        ),
    ),
    Case(
        "dependency",
        5,
        "started | job | * | * | * | yes | none",
        Scenario(
            "a job's new run that has not succeeded yet does not restart its dependent",
            yaml="""
            tasks:
              dep: {cmd: x, kind: job}
              api: {cmd: y, depends_on: {dep: {on_restart: restart}}}
            """,
            # Run 2 never ends: only its start reaches the dependent.
            scripts={"dep": [Run(exit_at=0.2), FOREVER], "api": [FOREVER]},
            commands=[cmd(1.0, "restart", "dep")],
            expected=[
                ev(T.TASK_SUCCEEDED, "dep", run=1, at=0.2),
                ev(T.TASK_STARTING, "dep", run=2, at=1.0),
                ev(T.TASK_SPAWNED, "dep", run=2, at=1.0),
            ],
            never=[ev(T.TASK_STOPPING, "api"), ev(T.TASK_STARTING, "api", run=2)],
            final={"dep": Status.RUNNING, "api": Status.RUNNING},
            until=3.0,
        ),
    ),
    Case(
        "dependency",
        7,
        "* | * | no | * | * | yes | none",
        Scenario(
            "a dependent that started beside run 1 of a job is not restarted when it succeeds",
            yaml="""
            tasks:
              dep: {cmd: x, kind: job}
              api: {cmd: y, depends_on: {dep: {on_restart: restart}}}
            """,
            scripts={"dep": [Run(exit_at=0.2)], "api": [FOREVER]},
            expected=[
                ev(T.TASK_STARTING, "api", run=1, at=0),
                ev(T.TASK_SUCCEEDED, "dep", run=1, at=0.2),
            ],
            never=[ev(T.TASK_STOPPING, "api"), ev(T.TASK_STARTING, "api", run=2)],
            final={"dep": Status.SUCCEEDED, "api": Status.RUNNING},
            until=3.0,
        ),
    ),
    Case(
        "dependency",
        8,
        "* | job | yes | unset, restart | * | yes | restart",
        _rerun(
            "a job that ran again and succeeded restarts its dependent (on_restart unset)",
            "{condition: succeeded}",
            "job",
            [
                ev(T.TASK_SUCCEEDED, "dep", run=2, at=1.2),
                ev(T.TASK_STOPPING, "api", reason="restart", at=1.2),
                ev(T.TASK_STARTING, "api", run=2, reason="dependency dep ran again", at=1.2),
            ],
            never=[ev(T.TASK_STOPPING, "api", at=(0.0, 1.1)), ev(T.TASK_STARTING, "api", run=3)],
            final={"dep": Status.SUCCEEDED, "api": Status.RUNNING},
        ),
        variant="unset",
    ),
    Case(
        "dependency",
        8,
        "* | job | yes | unset, restart | * | yes | restart",
        _rerun(
            "a job that ran again and succeeded restarts its dependent (on_restart: restart)",
            "{condition: succeeded, on_restart: restart}",
            "job",
            [
                ev(T.TASK_SUCCEEDED, "dep", run=2, at=1.2),
                ev(T.TASK_STARTING, "api", run=2, reason="dependency dep ran again", at=1.2),
            ],
            never=[ev(T.TASK_STARTING, "api", run=3)],
            final={"dep": Status.SUCCEEDED, "api": Status.RUNNING},
        ),
        variant="restart",
    ),
    Case(
        "dependency",
        9,
        "* | service | yes | restart | * | yes | restart",
        _rerun(
            "a service that restarted restarts its dependent with on_restart: restart",
            "{on_restart: restart}",
            "service",
            [
                ev(T.TASK_STOPPING, "api", reason="restart", at=1.0),
                ev(T.TASK_STARTING, "api", run=2, reason="dependency dep restarted", at=1.0),
                ev(T.TASK_SPAWNED, "api", run=2, at=1.0),
            ],
            never=[ev(T.TASK_STARTING, "api", run=3)],
            final={"dep": Status.RUNNING, "api": Status.RUNNING},
        ),
        variant="command",
    ),
    Case(
        "dependency",
        9,
        "* | service | yes | restart | * | yes | restart",
        _db_fails(
            "a service restarted by its policy restarts its dependent with on_restart: restart",
            "{on_failure: ignore, on_restart: restart}",
            # db's failure itself does nothing (on_failure: ignore); its new run does.
            [
                ev(T.TASK_STARTING, "db", run=2, at=1.5),
                ev(T.TASK_STOPPING, "api", reason="restart", at=1.5),
                ev(T.TASK_STARTING, "api", run=2, reason="dependency db restarted", at=1.5),
            ],
            never=[ev(T.TASK_STOPPING, "api", at=(0.0, 1.4)), ev(T.TASK_STARTING, "api", run=3)],
            final={"db": Status.RUNNING, "api": Status.RUNNING},
        ),
        variant="policy",
    ),
    Case(
        "dependency",
        10,
        "* | * | yes | stop | * | yes | stop",
        _rerun(
            "a service that restarted stops its dependent with on_restart: stop",
            "{on_restart: stop}",
            "service",
            [
                ev(T.TASK_STOPPING, "api", reason="dependency", at=1.0),
                ev(T.TASK_STOPPED, "api", reason="dependency", at=1.0),
            ],
            never=[ev(T.TASK_STARTING, "api", run=2)],
            final={"dep": Status.RUNNING, "api": Status.STOPPED},
        ),
        variant="service",
    ),
    Case(
        "dependency",
        10,
        "* | * | yes | stop | * | yes | stop",
        _rerun(
            "a job that ran again and succeeded stops its dependent with on_restart: stop",
            "{condition: succeeded, on_restart: stop}",
            "job",
            [
                ev(T.TASK_SUCCEEDED, "dep", run=2, at=1.2),
                ev(T.TASK_STOPPING, "api", reason="dependency", at=1.2),
                ev(T.TASK_STOPPED, "api", reason="dependency", at=1.2),
            ],
            never=[ev(T.TASK_STARTING, "api", run=2)],
            final={"dep": Status.SUCCEEDED, "api": Status.STOPPED},
        ),
        variant="job",
    ),
    Case(
        "dependency",
        11,
        "* | * | yes | * | * | yes | none",
        _rerun(
            "a service that restarted leaves its dependent running (on_restart unset)",
            "{condition: started}",
            "service",
            [ev(T.TASK_SPAWNED, "dep", run=2, at=1.0)],
            never=[ev(T.TASK_STOPPING, "api"), ev(T.TASK_STARTING, "api", run=2)],
            final={"dep": Status.RUNNING, "api": Status.RUNNING},
        ),
        variant="service-unset",
    ),
    Case(
        "dependency",
        11,
        "* | * | yes | * | * | yes | none",
        _rerun(
            "a job that ran again leaves its dependent running with on_restart: ignore",
            "{condition: succeeded, on_restart: ignore}",
            "job",
            [ev(T.TASK_SUCCEEDED, "dep", run=2, at=1.2)],
            never=[ev(T.TASK_STOPPING, "api"), ev(T.TASK_STARTING, "api", run=2)],
            final={"dep": Status.SUCCEEDED, "api": Status.RUNNING},
        ),
        variant="job-ignore",
    ),
]

# --------------------------------------------------------------------------- trigger

_BUILD = """
observers:
  src: {files: {paths: [src/]}}
tasks:
  build: {cmd: x, kind: job, triggers: [src]%s}
"""
"""A job ``build`` triggered by the files observer ``src`` (``%s``: more keys)."""

FILES = Fire(1.0, "src", "files", "changed: src/a.py")
"""The files observer ``src`` fires at 1 s."""

TRIGGER = [
    Case(
        "trigger",
        1,
        "files, interval, task, log, manual | stopped | * | * | * | * | * | ignore",
        Scenario(
            "a file change does not start a job the user stopped",
            yaml=_BUILD % "",
            scripts={"build": [Run(exit_at=0.2)]},
            commands=[cmd(0.5, "stop", "build")],
            expected=[
                ev(T.TASK_SUCCEEDED, "build", at=0.2),
                ev(T.TASK_STOPPED, "build", reason="user", at=0.5),
            ],
            never=[
                ev(T.TASK_TRIGGERED, "build"),
                ev(T.TASK_PENDING, "build"),
                ev(T.TASK_STARTING, "build", run=2),
            ],
            final={"build": Status.STOPPED},
            until=3.0,
        ),
        variant="files",
        fires=[FILES],
    ),
    Case(
        "trigger",
        1,
        "files, interval, task, log, manual | stopped | * | * | * | * | * | ignore",
        Scenario(
            "an interval observer does not start a service the user stopped",
            yaml="""
            observers:
              tick: {interval: {every: 1s}}
            tasks:
              svc: {cmd: x, triggers: [tick]}
            """,
            scripts={"svc": [FOREVER]},
            commands=[cmd(0.5, "stop", "svc")],
            expected=[ev(T.TASK_STOPPED, "svc", reason="user", at=0.5)],
            never=[ev(T.TASK_TRIGGERED, "svc"), ev(T.TASK_STARTING, "svc", run=2)],
            final={"svc": Status.STOPPED},
            until=5.0,
        ),
        variant="interval",
    ),
    Case(
        "trigger",
        1,
        "files, interval, task, log, manual | stopped | * | * | * | * | * | ignore",
        Scenario(
            "a task-finished observer does not start a job the user stopped",
            yaml="""
            observers:
              generated: {task: {task: gen}}
            tasks:
              gen: {cmd: g, kind: job}
              build: {cmd: x, kind: job, triggers: [generated]}
            """,
            scripts={"gen": [Run(exit_at=1.0)], "build": [Run(exit_at=0.2)]},
            commands=[cmd(0.5, "stop", "build")],
            expected=[
                ev(T.TASK_STOPPED, "build", reason="user", at=0.5),
                ev(T.TASK_SUCCEEDED, "gen", at=1.0),
            ],
            never=[ev(T.TASK_TRIGGERED, "build"), ev(T.TASK_STARTING, "build", run=2)],
            final={"build": Status.STOPPED},
            until=3.0,
        ),
        variant="task",
    ),
    Case(
        "trigger",
        2,
        "files | * | * | * | * | * | off | ignore",
        Scenario(
            "a file change does not start a job whose file watching is off",
            yaml=_BUILD % "",
            scripts={"build": [Run(exit_at=0.2)]},
            commands=[cmd(0.5, "set_watch", "build", enabled=False)],
            expected=[
                ev(T.TASK_SUCCEEDED, "build", at=0.2),
                ev(T.TASK_WATCH, "build", enabled=False, at=0.5),
            ],
            never=[
                ev(T.TASK_TRIGGERED, "build"),
                ev(T.TASK_PENDING, "build"),
                ev(T.TASK_STARTING, "build", run=2),
            ],
            final={"build": Status.SUCCEEDED},
            until=3.0,
        ),
        fires=[FILES],
    ),
    Case(
        "trigger",
        3,
        "files, interval, task, log | * | * | * | * | manual | * | pending",
        Scenario(
            "a file change marks a job with trigger_mode manual pending",
            yaml=_BUILD % ", trigger_mode: manual",
            scripts={"build": [Run(exit_at=0.2)]},
            expected=[
                ev(T.TASK_SUCCEEDED, "build", at=0.2),
                ev(
                    T.TASK_PENDING,
                    "build",
                    trigger="src",
                    detail=Contains("waiting for you to trigger it"),
                    at=1.0,
                ),
            ],
            never=[ev(T.TASK_TRIGGERED, "build"), ev(T.TASK_STARTING, "build", run=2)],
            final={"build": Status.PENDING},
            until=3.0,
        ),
        variant="files",
        fires=[FILES],
    ),
    Case(
        "trigger",
        3,
        "files, interval, task, log | * | * | * | * | manual | * | pending",
        Scenario(
            "a log line marks a job with trigger_mode manual pending",
            yaml="""
            observers:
              seen: {log: {task: api, pattern: "schema changed"}}
            tasks:
              api: {cmd: y}
              build: {cmd: x, kind: job, triggers: [seen], trigger_mode: manual}
            """,
            scripts={
                "api": [Run(output=[(1.0, "stdout", b"schema changed\n")])],
                "build": [Run(exit_at=0.2)],
            },
            expected=[
                ev(T.TASK_SUCCEEDED, "build", at=0.2),
                ev(T.TASK_PENDING, "build", trigger="seen", at=1.0),
            ],
            never=[ev(T.TASK_TRIGGERED, "build"), ev(T.TASK_STARTING, "build", run=2)],
            final={"build": Status.PENDING},
            until=3.0,
        ),
        variant="log",
    ),
    Case(
        "trigger",
        4,
        "* | * | job | yes | * | * | * | queue",
        Scenario(
            "a file change during a job's run queues exactly one more run",
            yaml=_BUILD % "",
            scripts={"build": [Run(exit_at=2.0), Run(exit_at=0.5)]},
            expected=[
                ev(T.TASK_TRIGGERED, "build", trigger="src", at=1.0),
                ev(T.TASK_PENDING, "build", detail="queued: runs again next", at=1.0),
                ev(T.TASK_EXITED, "build", run=1, success=True, stopped=False, at=2.0),
                ev(T.TASK_STARTING, "build", run=2, reason="trigger", at=2.0),
                ev(T.TASK_SUCCEEDED, "build", run=2, at=2.5),
            ],
            never=[ev(T.TASK_STOPPING, "build"), ev(T.TASK_STARTING, "build", run=3)],
            final={"build": Status.SUCCEEDED},
            until=4.0,
        ),
        fires=[FILES],
    ),
    Case(
        "trigger",
        5,
        "* | * | service | yes | * | * | * | restart",
        Scenario(
            "a file change restarts a running service",
            yaml="""
            observers:
              src: {files: {paths: [src/]}}
            tasks:
              svc: {cmd: x, triggers: [src]}
            """,
            scripts={"svc": [FOREVER]},
            expected=[
                ev(T.TASK_TRIGGERED, "svc", trigger="src", at=1.0),
                ev(T.TASK_STOPPING, "svc", reason="restart", at=1.0),
                ev(T.TASK_EXITED, "svc", run=1, next="start", at=1.0),
                ev(T.TASK_STARTING, "svc", run=2, reason="trigger", at=1.0),
            ],
            never=[ev(T.TASK_STARTING, "svc", run=3)],
            final={"svc": Status.RUNNING},
            until=3.0,
        ),
        fires=[FILES],
    ),
    Case(
        "trigger",
        6,
        "* | * | * | no | yes | * | * | ignore",
        Scenario(
            "a file change leaves a service in backoff to its backoff",
            yaml="""
            observers:
              src: {files: {paths: [src/]}}
            tasks:
              svc:
                cmd: x
                triggers: [src]
                restart: {policy: always, backoff: {initial: 5s, jitter: 0}}
            """,
            scripts={"svc": [Run(exit_at=0.1, code=1), FOREVER]},
            expected=[
                ev(T.TASK_BACKOFF, "svc", delay=5.0, at=0.1),
                ev(T.TASK_STARTING, "svc", run=2, reason="restart", at=5.1),
            ],
            never=[ev(T.TASK_TRIGGERED, "svc"), ev(T.TASK_STARTING, "svc", run=3)],
            final={"svc": Status.RUNNING},
            until=6.0,
        ),
        variant="backoff",
        fires=[FILES],
    ),
    Case(
        "trigger",
        6,
        "* | * | * | no | yes | * | * | ignore",
        Scenario(
            "a file change leaves a job that waits for its dependency waiting",
            yaml="""
            observers:
              src: {files: {paths: [src/]}}
            tasks:
              gen: {cmd: g, kind: job}
              build: {cmd: x, kind: job, triggers: [src], depends_on: {gen: {condition: succeeded}}}
            """,
            scripts={"gen": [FOREVER], "build": [FOREVER]},
            expected=[ev(T.TASK_WAITING, "build", on=["gen"], at=0)],
            never=[ev(T.TASK_TRIGGERED, "build"), ev(T.TASK_STARTING, "build")],
            final={"build": Status.WAITING},
            until=3.0,
        ),
        variant="waiting",
        fires=[FILES],
    ),
    Case(
        "trigger",
        7,
        "* | * | * | no | no | * | * | start",
        Scenario(
            "a file change starts a job that has ended",
            yaml=_BUILD % "",
            scripts={"build": [Run(exit_at=0.2)]},
            expected=[
                ev(T.TASK_SUCCEEDED, "build", run=1, at=0.2),
                ev(T.TASK_TRIGGERED, "build", trigger="src", detail="changed: src/a.py", at=1.0),
                ev(T.TASK_STARTING, "build", run=2, reason="trigger", at=1.0),
                ev(T.TASK_SUCCEEDED, "build", run=2, at=1.2),
            ],
            never=[ev(T.TASK_STARTING, "build", run=3)],
            final={"build": Status.SUCCEEDED},
            until=3.0,
        ),
        variant="files",
        fires=[FILES],
    ),
    Case(
        "trigger",
        7,
        "* | * | * | no | no | * | * | start",
        Scenario(
            "an interval observer starts a job that has ended, every time",
            yaml="""
            observers:
              tick: {interval: {every: 1s}}
            tasks:
              build: {cmd: x, kind: job, triggers: [tick]}
            """,
            scripts={"build": [Run(exit_at=0.2)]},
            expected=[
                ev(T.TASK_SUCCEEDED, "build", run=1, at=0.2),
                ev(T.TASK_TRIGGERED, "build", trigger="tick", detail="every 1s", at=1.0),
                ev(T.TASK_STARTING, "build", run=2, reason="trigger", at=1.0),
                ev(T.TASK_SUCCEEDED, "build", run=2, at=1.2),
                ev(T.TASK_STARTING, "build", run=3, reason="trigger", at=2.0),
            ],
            final={"build": Status.SUCCEEDED},
            until=2.5,
        ),
        variant="interval",
    ),
    Case(
        "trigger",
        7,
        "* | * | * | no | no | * | * | start",
        Scenario(
            "devster trigger starts a job the user stopped",
            yaml=_BUILD % "",
            scripts={"build": [Run(exit_at=0.2)]},
            commands=[cmd(0.5, "stop", "build"), cmd(1.0, "trigger", "build")],
            expected=[
                ev(T.TASK_STOPPED, "build", reason="user", at=0.5),
                ev(T.TASK_TRIGGERED, "build", trigger="user", at=1.0),
                ev(T.TASK_STARTING, "build", run=2, reason="trigger", at=1.0),
                ev(T.TASK_SUCCEEDED, "build", run=2, at=1.2),
            ],
            final={"build": Status.SUCCEEDED},
            until=3.0,
        ),
        variant="user",
    ),
]

# --------------------------------------------------------------------------- commands

STOP = [
    Case(
        "stop",
        1,
        "yes | stop",
        Scenario(
            "devster stop on a running service stops it",
            yaml="tasks: {svc: {cmd: x}}",
            scripts={"svc": [FOREVER]},
            commands=[cmd(1.0, "stop", "svc")],
            expected=[
                ev(T.TASK_STOPPING, "svc", reason="user", signal="SIGTERM", at=1.0),
                ev(T.TASK_EXITED, "svc", stopped=True, next="stopped", at=1.0),
                ev(T.TASK_STOPPED, "svc", reason="user", at=1.0),
            ],
            final={"svc": Status.STOPPED},
            signals={"svc": [TERM]},
            until=3.0,
        ),
        answers=["stopped svc"],
    ),
    Case(
        "stop",
        2,
        "no | disarm",
        Scenario(
            "devster stop on a job that has ended switches its triggers off",
            yaml=_BUILD % "",
            scripts={"build": [Run(exit_at=0.2)]},
            commands=[cmd(1.0, "stop", "build")],
            expected=[
                ev(T.TASK_SUCCEEDED, "build", at=0.2),
                ev(T.TASK_STOPPED, "build", reason="user", was_running=False, at=1.0),
            ],
            never=[ev(T.TASK_STOPPING, "build")],
            final={"build": Status.STOPPED},
            signals={"build": []},
            until=3.0,
        ),
        answers=["build was not running; triggers off"],
    ),
]

_LIMITED = """
tasks:
  svc:
    cmd: x
    restart:
      policy: on-failure
      max_restarts: 1
      window: 1m
      backoff: {initial: 100ms, jitter: 0}
"""
"""A service that fails at its restart limit at 0.2 s with CRASH."""

BUDGET = [
    Case(
        "budget",
        1,
        "start, restart | yes",
        Scenario(
            "devster restart after the restart limit starts with a fresh budget",
            yaml=_LIMITED,
            scripts={"svc": [CRASH]},
            commands=[cmd(2.0, "restart", "svc")],
            expected=[
                ev(T.TASK_FAILED, "svc", at=0.2),
                ev(T.TASK_STARTING, "svc", run=3, reason="restart", reset=True, at=2.0),
                ev(T.TASK_EXITED, "svc", run=3, next="backoff", at=2.05),
                ev(T.TASK_STARTING, "svc", run=4, at=2.15),
                ev(T.TASK_EXITED, "svc", run=4, next="failed", at=2.2),
            ],
            final={"svc": Status.FAILED},
            until=3.0,
        ),
        variant="restart",
    ),
    Case(
        "budget",
        1,
        "start, restart | yes",
        Scenario(
            "devster start after the restart limit starts with a fresh budget",
            yaml=_LIMITED,
            scripts={"svc": [CRASH]},
            commands=[cmd(2.0, "start", "svc")],
            expected=[
                ev(T.TASK_FAILED, "svc", at=0.2),
                ev(T.TASK_STARTING, "svc", run=3, reason="start", reset=True, at=2.0),
                ev(T.TASK_EXITED, "svc", run=3, next="backoff", at=2.05),
                ev(T.TASK_STARTING, "svc", run=4, at=2.15),
            ],
            final={"svc": Status.FAILED},
            until=3.0,
        ),
        variant="start",
    ),
    Case(
        "budget",
        2,
        "stop, trigger, approve | no",
        Scenario(
            "a stop in backoff and a trigger keep the restart count: the next crash fails",
            yaml="""
            tasks:
              svc:
                cmd: x
                restart:
                  policy: on-failure
                  max_restarts: 2
                  window: 1m
                  backoff: {initial: 1s, factor: 1, jitter: 0}
            """,
            scripts={"svc": [CRASH]},
            commands=[cmd(1.5, "stop", "svc"), cmd(2.0, "trigger", "svc")],
            expected=[
                ev(T.TASK_EXITED, "svc", run=2, next="backoff", at=1.1),
                ev(T.TASK_STOPPED, "svc", reason="user", at=1.5),
                ev(T.TASK_STARTING, "svc", run=3, reason="trigger", at=2.0),
                ev(T.TASK_EXITED, "svc", run=3, next="failed", at=2.05),
                ev(T.TASK_FAILED, "svc", reason=Contains("restarted 2 times"), at=2.05),
            ],
            never=[ev(T.TASK_STARTING, "svc", reset=True), ev(T.TASK_STARTING, "svc", run=4)],
            final={"svc": Status.FAILED},
            until=4.0,
        ),
        variant="stop-trigger",
    ),
    Case(
        "budget",
        2,
        "stop, trigger, approve | no",
        Scenario(
            "an approval at a manual gate keeps the restart count: the next crash fails",
            yaml="""
            observers:
              go: {manual: {prompt: "run svc?"}}
            tasks:
              svc:
                cmd: x
                triggers: [go]
                restart:
                  policy: on-failure
                  max_restarts: 1
                  window: 1m
                  backoff: {initial: 100ms, jitter: 0}
            """,
            scripts={"svc": [CRASH]},
            commands=[cmd(0.5, "approve", "svc"), cmd(1.0, "approve", "svc")],
            expected=[
                ev(T.TASK_GATE, "svc", waiting=True, at=0),
                ev(T.TASK_STARTING, "svc", run=1, at=0.5),
                ev(T.TASK_EXITED, "svc", run=1, next="backoff", at=0.55),
                ev(T.TASK_GATE, "svc", waiting=True, at=0.65),
                ev(T.TASK_STARTING, "svc", run=2, at=1.0),
                ev(T.TASK_EXITED, "svc", run=2, next="failed", at=1.05),
                ev(T.TASK_FAILED, "svc", reason=Contains("restarted 1 times"), at=1.05),
            ],
            never=[ev(T.TASK_STARTING, "svc", reset=True), ev(T.TASK_STARTING, "svc", run=3)],
            final={"svc": Status.FAILED},
            until=3.0,
        ),
        variant="approve",
    ),
]

# --------------------------------------------------------------------------- lifetime

_JOB = "tasks: {job: {cmd: x, kind: job}}"
"""One job (it succeeds at 0.2 s with _JOB_RUNS)."""
_JOB_RUNS = {"job": [Run(exit_at=0.2)]}


def _lifetime(
    name: str, yaml: str, scripts: Mapping[str, Script], commands: Sequence[At] = ()
) -> Scenario:
    """A lifetime case's scenario: what is asserted is ``wait_done``, not the events."""
    return Scenario(name, yaml=yaml, scripts=scripts, expected=[], commands=commands, until=5.0)


LIFETIME = [
    Case(
        "lifetime",
        1,
        "cockpit, detached | * | * | no",
        _lifetime("the cockpit stays after its only job succeeded", _JOB, _JOB_RUNS),
        variant="cockpit",
        lifetime=Lifetime("cockpit", None),
    ),
    Case(
        "lifetime",
        1,
        "cockpit, detached | * | * | no",
        _lifetime("up -d stays after its only job succeeded", _JOB, _JOB_RUNS),
        variant="detached",
        lifetime=Lifetime("detached", None),
    ),
    Case(
        "lifetime",
        2,
        "* | yes | * | no",
        _lifetime(
            "up --exit-when-done stays while a service runs",
            "tasks: {svc: {cmd: x}}",
            {"svc": [FOREVER]},
        ),
        variant="exit-when-done",
        lifetime=Lifetime("exit_when_done", None),
    ),
    Case(
        "lifetime",
        2,
        "* | yes | * | no",
        _lifetime(
            "up --no-tui stays while a service backs off",
            "tasks: {svc: {cmd: x, restart: {policy: always, backoff: {initial: 1h}}}}",
            {"svc": [Run(exit_at=0.1, code=1)]},
        ),
        variant="headless",
        lifetime=Lifetime("headless", None),
    ),
    Case(
        "lifetime",
        3,
        "exit_when_done | no | * | yes",
        _lifetime("devster run ends when its job succeeded", _JOB, _JOB_RUNS),
        variant="job",
        lifetime=Lifetime("exit_when_done", 0.2),
    ),
    Case(
        "lifetime",
        3,
        "exit_when_done | no | * | yes",
        _lifetime(
            "devster run ends when its watched job succeeded",
            _BUILD % "",
            {"build": [Run(exit_at=0.2)]},
        ),
        variant="watched",
        lifetime=Lifetime("exit_when_done", 0.2),
    ),
    Case(
        "lifetime",
        4,
        "headless | no | yes | no",
        _lifetime(
            "up --no-tui stays after its watched job succeeded",
            _BUILD % "",
            {"build": [Run(exit_at=0.2)]},
        ),
        lifetime=Lifetime("headless", None),
    ),
    Case(
        "lifetime",
        5,
        "headless | no | no | yes",
        _lifetime("up --no-tui ends when its unwatched job succeeded", _JOB, _JOB_RUNS),
        variant="unwatched",
        lifetime=Lifetime("headless", 0.2),
    ),
    Case(
        "lifetime",
        5,
        "headless | no | no | yes",
        _lifetime(
            "up --no-tui ends when the user stops its watched job",
            _BUILD % "",
            {"build": [Run(exit_at=0.2)]},
            commands=[cmd(1.0, "stop", "build")],
        ),
        variant="disarmed",
        lifetime=Lifetime("headless", 1.0),
    ),
    Case(
        "lifetime",
        5,
        "headless | no | no | yes",
        _lifetime(
            "up --no-tui ends when its job, triggered only by another task, succeeded",
            """
            observers:
              generated: {task: {task: gen}}
            tasks:
              gen: {cmd: g, kind: job}
              build:
                cmd: x
                kind: job
                triggers: [generated]
                depends_on: {gen: {condition: succeeded}}
            """,
            {"gen": [Run(exit_at=0.2)], "build": [Run(exit_at=0.3)]},
        ),
        variant="task-observer",
        lifetime=Lifetime("headless", 0.5),
    ),
]

CASES: list[Case] = [*EXIT, *CONDITION, *DEPENDENCY, *TRIGGER, *STOP, *BUDGET, *LIFETIME]

UNREACHABLE: dict[tuple[str, int], tuple[str, str]] = {
    ("condition", 7): (
        "succeeded | * | exited | * | impossible",
        "only a service ends exited (the exit table gives a job succeeded or failed), and "
        "the config refuses condition succeeded on a service (config/checks.py: "
        "\"condition 'succeeded' needs a job\"), so no dependent waits for that",
    ),
    ("dependency", 6): (
        "succeeded | service | * | * | * | yes | none",
        "a service never succeeds: task.succeeded is dispatched only for Next.SUCCEEDED "
        "(runner._after_exit), which policy.after_exit gives to kind job only, so "
        "DependencyRules never sees a 'succeeded' event of a service",
    ),
}
"""(table, row) -> (the row's text, why no engine scenario can reach it)."""

_LIVENESS_NO_SUCCESS = (
    "exit_success never counts a run stopped for liveness as a success (the success "
    "table's second row)"
)
UNREACHABLE_VALUES: list[tuple[str, int, str, str]] = [
    ("exit", 4, "liveness", _LIVENESS_NO_SUCCESS),
    ("exit", 6, "liveness", _LIVENESS_NO_SUCCESS),
    ("exit", 7, "liveness", _LIVENESS_NO_SUCCESS),
    (
        "exit",
        9,
        "liveness",
        'the config refuses a liveness check on a job (config/checks.py: "a job cannot '
        'have a liveness check")',
    ),
    (
        "condition",
        2,
        "exited",
        "a job never ends exited: the exit table gives a job succeeded or failed",
    ),
    (
        "condition",
        4,
        "exited",
        "only a service ends exited, and the config refuses condition completed on a "
        "service (config/checks.py: \"condition 'completed' needs a job\")",
    ),
    (
        "trigger",
        1,
        "manual",
        "no observer fires with source manual: a manual gate's approval is the approve "
        "command (Engine._approve), which does not go through on_trigger",
    ),
]
"""(table, row, a value of one of its cells, why): alternatives of a covered row that no
engine scenario can produce, so no variant takes them."""


# --------------------------------------------------------------------------- playing


@dataclass
class DoneWatch:
    """What ``Engine.wait_done(mode)`` did during a played case."""

    returned: list[tuple[float, bool]] = field(default_factory=list)
    """Its return: (seconds after ``engine.started``, whether a shutdown had begun)."""
    waiting_at_end: bool | None = None
    """Whether it still waited at the scenario's ``until`` (None: not watched)."""
    task: asyncio.Future[None] | None = None
    """The watching task (kept referenced here)."""


def play_case(
    case: Case, root: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[harness.Played, DoneWatch]:
    """Play ``case`` with the harness's :func:`~tests.helpers.scenario.check`, on an Engine
    that also fires the case's observers and watches ``wait_done``.

    Raises:
        AssertionError: from :func:`~tests.helpers.scenario.check`.
    """
    watch = DoneWatch()

    class RowEngine(Engine):
        async def start(
            self, selection: Sequence[str] = (), *, with_dependencies: bool = True
        ) -> None:
            await super().start(selection, with_dependencies=with_dependencies)
            t0 = next(e.mono for e in self.store.events_since(0) if e.type == T.ENGINE_STARTED)
            loop = asyncio.get_running_loop()
            for fire in case.fires:
                loop.call_at(
                    t0 + fire.at, self.triggers.fire, fire.observer, fire.detail, fire.kind
                )
            if case.lifetime is not None:
                waiter = asyncio.ensure_future(self._watch_done(case.lifetime.mode, t0))
                watch.task = waiter

                def at_end() -> None:
                    watch.waiting_at_end = not waiter.done()

                loop.call_at(t0 + case.scenario.until, at_end)

        async def _watch_done(self, mode: EngineMode, t0: float) -> None:
            await self.wait_done(mode)
            watch.returned.append((asyncio.get_running_loop().time() - t0, self.stopping))

    monkeypatch.setattr(harness, "Engine", RowEngine)
    return check(case.scenario, root), watch


def _param(case: Case) -> object:
    bug = case.scenario.bug
    marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_row(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    played, watch = play_case(case, tmp_path, monkeypatch)
    if case.answers:
        answers = [result.message for _step, result in played.results]
        assert len(answers) == len(case.answers), f"answers {answers}, expected {case.answers}"
        for want, got in zip(case.answers, answers, strict=True):
            assert want in got, f"the answer {got!r} does not say {want!r}"
    if case.lifetime is None:
        return
    mode, ends_at = case.lifetime.mode, case.lifetime.ends_at
    if ends_at is None:
        assert watch.waiting_at_end, (
            f"wait_done({mode!r}) did not wait until {case.scenario.until:g}s: "
            f"returned {watch.returned}; the engine should stay"
        )
        return
    assert watch.returned, f"wait_done({mode!r}) did not return by {case.scenario.until:g}s"
    at, stopping = watch.returned[0]
    assert not stopping and abs(at - ends_at) <= SLACK, (
        f"wait_done({mode!r}) returned at {at:g}s (shutting down: {stopping}), "
        f"expected {ends_at:g}s"
    )


# --------------------------------------------------------------------------- coverage


def uncovered(
    cases: Sequence[Case],
    unreachable: Mapping[tuple[str, int], tuple[str, str]],
    values: Sequence[tuple[str, int, str, str]] = (),
) -> Iterator[str]:
    """Each way the cases fail to cover the page's tables: a row without a scenario, a case
    (or unreachable entry) whose row now reads differently, an unreachable value its row no
    longer has, a repeated test id."""
    rows = {name: [row_text(r) for r in cells(name)[1]] for name in TABLES}
    claims = [(c.table, c.row, c.cells, c.id) for c in cases]
    claims += [
        (t, n, text, f"unreachable {t} row {n}") for (t, n), (text, _why) in unreachable.items()
    ]
    for table_name, number, text, what in claims:
        page = rows.get(table_name)
        if page is None:
            yield f"{what}: {table_name!r} is not one of the tables {TABLES}"
        elif not 1 <= number <= len(page):
            yield f"{what}: table {table_name} has {len(page)} rows, not {number}"
        elif page[number - 1] != text:
            yield f"{what}: row {number} of {table_name} reads {page[number - 1]!r}, not {text!r}"
    for table_name, number, value, _why in values:
        page = rows.get(table_name, [])
        row = page[number - 1].split(" | ") if 1 <= number <= len(page) else []
        if not any(value in (v.strip() for v in cell.split(",")) for cell in row[:-1]):
            yield f"unreachable value {value!r}: not in {table_name} row {number} {row}"
    covered = {(t, n) for t, n, _text, _what in claims}
    for table_name, page in rows.items():
        for number, text in enumerate(page, 1):
            if (table_name, number) not in covered:
                yield f"{table_name} row {number} ({text}) has no engine scenario"
    ids = [c.id for c in cases]
    for repeated in sorted({i for i in ids if ids.count(i) > 1}):
        yield f"test id {repeated} is used twice"


def test_every_row_has_an_engine_scenario() -> None:
    problems = list(uncovered(CASES, UNREACHABLE, UNREACHABLE_VALUES))
    assert not problems, "\n".join(problems)


def test_the_coverage_check_catches_a_missing_a_changed_and_a_wrong_row() -> None:
    """The coverage check must be able to fail."""
    without_row_3 = [c for c in CASES if (c.table, c.row) != ("exit", 3)]
    assert any("exit row 3 " in p for p in uncovered(without_row_3, UNREACHABLE))
    changed = [Case("exit", 4, "none | yes | always | not reached | * | backoff", EXIT[0].scenario)]
    assert any("row 4 of exit reads" in p for p in uncovered(changed, {}))
    beyond = [Case("stop", 3, "maybe | stop", EXIT[0].scenario)]
    assert any("has 2 rows, not 3" in p for p in uncovered(beyond, {}))
    assert any("used twice" in p for p in uncovered([EXIT[0], EXIT[0]], {}))
    wrong_value = [("trigger", 4, "manual", "not in that row")]
    assert any("unreachable value 'manual'" in p for p in uncovered(CASES, {}, wrong_value))
