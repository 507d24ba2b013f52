"""Triggers with a real engine, files and processes: files, manual mode, finished, log, interval."""

from __future__ import annotations

import asyncio
from pathlib import Path

from devster_tui.engine.supervisor import Engine
from devster_tui.state.commands import Command
from devster_tui.state.events import T
from devster_tui.state.model import Status
from tests.test_supervisor import events, make_engine, run, session, status_is, wait_state


def starts(engine: Engine, task: str) -> int:
    return len(events(engine, T.TASK_STARTING, task))


async def ready(engine: Engine, observer: str = "src") -> None:
    """Wait until the observer's watches are in place."""
    await asyncio.wait_for(engine.triggers.watchers[observer].ready.wait(), 10)


FILES = """
observers:
  src: {files: {paths: [src]}}
tasks:
"""


def test_a_change_during_a_run_queues_exactly_one_follow_up_never_a_second_run(
    tmp_path: Path,
) -> None:
    (tmp_path / "src").mkdir()
    engine = make_engine(
        tmp_path,
        FILES
        + """
  build:
    kind: job
    triggers: [src]
    cmd: "echo run >> runs.txt; while [ ! -e release ]; do sleep 0.01; done; rm release"
""",
    )

    async def body() -> None:
        await ready(engine)
        await wait_state(engine, status_is("build", Status.RUNNING))
        for n in range(3):
            (tmp_path / "src" / f"f{n}.py").write_text("x")
            await wait_state(engine, lambda s: s.tasks["build"].pending)
        (tmp_path / "release").write_text("")
        await wait_state(engine, lambda s: s.tasks["build"].run == 2)
        (tmp_path / "release").write_text("")
        await wait_state(engine, status_is("build", Status.SUCCEEDED))
        assert starts(engine, "build") == 2
        assert (tmp_path / "runs.txt").read_text() == "run\nrun\n"
        spawned = [e.type for e in engine.store.events_since(0) if e.task == "build"]
        live = 0
        for kind in spawned:
            live += {T.TASK_SPAWNED: 1, T.TASK_EXITED: -1}.get(kind, 0)
            assert live <= 1

    run(session(engine, body))


def test_a_user_stopped_task_is_not_started_by_a_change_until_started_again(
    tmp_path: Path,
) -> None:
    (tmp_path / "src").mkdir()
    engine = make_engine(
        tmp_path,
        FILES
        + """
  web: {cmd: "sleep 30", triggers: [src]}
  witness: {cmd: "true", kind: job, triggers: [src], autostart: false}
""",
    )

    async def body() -> None:
        await ready(engine)
        await wait_state(engine, status_is("web", Status.RUNNING))
        await engine.execute(Command("stop", ("web",)))
        (tmp_path / "src" / "a.py").write_text("1")
        await wait_state(engine, status_is("witness", Status.SUCCEEDED))
        assert engine.store.state.tasks["web"].status is Status.STOPPED
        await engine.execute(Command("start", ("web",)))
        await wait_state(engine, status_is("web", Status.RUNNING))
        (tmp_path / "src" / "b.py").write_text("2")
        await wait_state(engine, lambda s: s.tasks["web"].run == 3)

    run(session(engine, body))


def test_watch_toggled_off_ignores_changes_and_toggled_on_reacts_again(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    engine = make_engine(
        tmp_path,
        FILES
        + """
  web: {cmd: "sleep 30", triggers: [src]}
  witness: {cmd: "true", kind: job, triggers: [src], autostart: false}
""",
    )

    async def body() -> None:
        await ready(engine)
        await wait_state(engine, status_is("web", Status.RUNNING))
        result = await engine.execute(Command("set_watch", ("web",), enabled=False))
        assert result.ok and not engine.store.state.tasks["web"].watching
        (tmp_path / "src" / "a.py").write_text("1")
        await wait_state(engine, status_is("witness", Status.SUCCEEDED))
        assert engine.store.state.tasks["web"].run == 1
        await engine.execute(Command("set_watch", ("web",)))
        (tmp_path / "src" / "b.py").write_text("2")
        await wait_state(engine, lambda s: s.tasks["web"].run == 2)

    run(session(engine, body))


def test_manual_trigger_mode_marks_pending_until_fired(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    engine = make_engine(
        tmp_path,
        FILES
        + """
  tests: {cmd: "true", kind: job, triggers: [src], trigger_mode: manual}
""",
    )

    async def body() -> None:
        await ready(engine)
        await wait_state(engine, status_is("tests", Status.SUCCEEDED))
        (tmp_path / "src" / "a.py").write_text("1")
        state = await wait_state(engine, status_is("tests", Status.PENDING))
        assert state.tasks["tests"].pending and state.tasks["tests"].run == 1
        assert (await engine.execute(Command("trigger", ("tests",)))).ok
        await wait_state(engine, lambda s: s.tasks["tests"].run == 2)
        await wait_state(engine, status_is("tests", Status.SUCCEEDED))

    run(session(engine, body))


def test_task_finished_trigger_fires_on_success_only_when_asked(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path,
        """
        observers:
          ok: {task: {task: build, on: success}}
          bad: {task: {task: build, on: failure}}
        tasks:
          build: {cmd: "true", kind: job}
          deploy: {cmd: "true", kind: job, triggers: [ok], autostart: false}
          alert: {cmd: "true", kind: job, triggers: [bad], autostart: false}
        """,
    )

    async def body() -> None:
        await wait_state(engine, status_is("deploy", Status.SUCCEEDED))
        assert engine.store.state.tasks["alert"].run == 0

    run(session(engine, body))


def test_log_pattern_trigger_fires_when_a_line_matches(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path,
        """
        observers:
          oops: {log: {task: app, pattern: "ERROR \\\\d+", stream: stderr}}
        tasks:
          app: {cmd: "echo ERROR 1; echo ERROR 2 >&2; sleep 30"}
          pager: {cmd: "echo paged", kind: job, triggers: [oops], autostart: false}
        """,
    )

    async def body() -> None:
        await wait_state(engine, status_is("pager", Status.SUCCEEDED))
        fired = events(engine, T.TASK_TRIGGERED, "pager")
        assert len(fired) == 1 and "ERROR 2" in fired[0].data["detail"]

    run(session(engine, body))


def test_interval_trigger_runs_a_job_repeatedly(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path,
        """
        observers:
          tick: {interval: {every: 50ms}}
        tasks:
          poll: {cmd: "true", kind: job, triggers: [tick], autostart: false}
        """,
    )

    async def body() -> None:
        await wait_state(engine, lambda s: s.tasks["poll"].run >= 3)

    run(session(engine, body))
