"""Engine tests with real processes: ordering, dependencies, policies, health, alarms, stops."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import sys
import textwrap
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from devster_tui.config.loader import load_project
from devster_tui.engine.supervisor import Engine
from devster_tui.state.commands import Command
from devster_tui.state.events import Event, T
from devster_tui.state.model import EngineState, Status
from tests.helpers import run as run_with_deadline
from tests.helpers import wait_state as wait_state

PY = sys.executable
DEADLINE = 15.0


def make_engine(tmp_path: Path, yaml: str) -> Engine:
    """An engine over a project file written from ``yaml`` in ``tmp_path``."""
    file = tmp_path / "devster.yaml"
    file.write_text(textwrap.dedent(yaml).replace("PY", PY))
    return Engine(load_project(file))


def run(coro: Coroutine[Any, Any, None], limit: float = 30.0) -> None:
    """Run one async test body with an overall deadline."""
    run_with_deadline(coro, limit)


def status_is(task: str, *statuses: Status) -> Callable[[EngineState], bool]:
    """Predicate: ``task`` is in one of ``statuses``."""
    return lambda s: task in s.tasks and s.tasks[task].status in statuses


def events(engine: Engine, type_: str | None = None, task: str | None = None) -> list[Event]:
    """Recorded events, filtered by type and task."""
    return [
        e
        for e in engine.store.events_since(0)
        if (type_ is None or e.type == type_) and (task is None or e.task == task)
    ]


async def session(
    engine: Engine, body: Callable[[], Awaitable[None]], selection: tuple[str, ...] = ()
) -> None:
    """Start ``engine``, run ``body``, and always shut the engine down."""
    await engine.start(selection)
    try:
        await body()
    finally:
        await engine.shutdown(force=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- ordering


def test_dependency_is_spawned_before_its_dependent_starts(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path,
        """
        tasks:
          app: {cmd: "echo app", kind: job, depends_on: {db: {condition: log_ready}}}
          db: {cmd: "sleep 0.2; echo ready; sleep 30", ready_log: ready}
        """,
    )

    async def body() -> None:
        await wait_state(engine, status_is("app", Status.SUCCEEDED))
        db_spawn = events(engine, T.TASK_SPAWNED, "db")[0]
        app_start = events(engine, T.TASK_STARTING, "app")[0]
        assert db_spawn.seq < app_start.seq
        waiting = events(engine, T.TASK_WAITING, "app")
        assert waiting and "db (log_ready)" in waiting[0].data["reason"]

    run(session(engine, body))


def test_independent_tasks_run_in_parallel_not_one_after_another(tmp_path: Path) -> None:
    # Each job succeeds only if the other one is running at the same time.
    script = (
        "touch {me}; for i in $(seq 200); do [ -f {other} ] && exit 0; sleep 0.02; done; exit 1"
    )
    engine = make_engine(
        tmp_path,
        f"""
        tasks:
          x: {{cmd: "{script.format(me="x.flag", other="y.flag")}", kind: job}}
          y: {{cmd: "{script.format(me="y.flag", other="x.flag")}", kind: job}}
        """,
    )

    async def body() -> None:
        await wait_state(
            engine, lambda s: all(s.tasks[n].status is Status.SUCCEEDED for n in ("x", "y"))
        )

    run(session(engine, body))


def test_selection_starts_only_the_named_task_and_its_dependencies(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path,
        """
        tasks:
          base: {cmd: "true", kind: job}
          api: {cmd: "echo api", kind: job, depends_on: {base: {condition: succeeded}}}
          other: {cmd: "sleep 30"}
        """,
    )

    async def body() -> None:
        await wait_state(engine, status_is("api", Status.SUCCEEDED))
        assert engine.selected == ["base", "api"]
        assert engine.store.state.tasks["other"].status is Status.DEFINED

    run(session(engine, body, ("api",)))


def test_stop_order_is_dependents_first(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path,
        """
        tasks:
          db: {cmd: "sleep 30"}
          api: {cmd: "sleep 30", depends_on: [db]}
          web: {cmd: "sleep 30", depends_on: [api]}
        """,
    )

    async def body() -> None:
        await engine.start()
        await wait_state(
            engine, lambda s: all(s.tasks[n].status is Status.RUNNING for n in ("db", "api", "web"))
        )
        code = await engine.shutdown()
        stopped = [e.task for e in events(engine, T.TASK_STOPPED)]
        assert stopped == ["web", "api", "db"]
        assert code == 0

    run(body())


# --------------------------------------------------------------------------- dependencies


def test_healthy_condition_holds_the_dependent_until_the_check_passes(tmp_path: Path) -> None:
    port = free_port()
    server = (
        f"import socket,time; time.sleep(0.3); s=socket.socket(); "
        f"s.bind(('127.0.0.1',{port})); s.listen(); print('up', flush=True); time.sleep(60)"
    )
    engine = make_engine(
        tmp_path,
        f"""
        tasks:
          srv:
            cmd: [PY, -c, "{server}"]
            health: {{tcp: {port}, interval: 50ms, retries: 1}}
          client:
            kind: job
            cmd: [PY, -c, "import socket; socket.create_connection(('127.0.0.1', {port}))"]
            depends_on: {{srv: {{condition: healthy}}}}
        """,
    )

    async def body() -> None:
        await wait_state(engine, status_is("client", Status.SUCCEEDED, Status.EXITED))
        assert engine.store.state.tasks["client"].status is Status.SUCCEEDED
        healthy = next(e for e in events(engine, T.TASK_HEALTH, "srv") if e.data["healthy"])
        assert healthy.seq < events(engine, T.TASK_STARTING, "client")[0].seq

    run(session(engine, body))


def test_dependent_is_blocked_with_reason_when_condition_times_out(tmp_path: Path) -> None:
    port = free_port()
    engine = make_engine(
        tmp_path,
        f"""
        tasks:
          srv: {{cmd: "sleep 30", health: {{tcp: {port}, interval: 50ms}}}}
          app:
            cmd: "echo never"
            depends_on: {{srv: {{condition: healthy, timeout: 300ms}}}}
        """,
    )

    async def body() -> None:
        state = await wait_state(engine, status_is("app", Status.BLOCKED))
        assert state.tasks["app"].reason == "dependency srv not healthy after 0.3s"
        assert not events(engine, T.TASK_SPAWNED, "app")

    run(session(engine, body))


def test_dependent_is_blocked_not_pending_forever_when_dependency_fails(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path,
        """
        tasks:
          build: {cmd: "echo compile error; exit 2", kind: job}
          app:
            cmd: "echo never"
            depends_on: {build: {condition: succeeded}}
        """,
    )

    async def body() -> None:
        state = await wait_state(engine, status_is("app", Status.BLOCKED))
        assert "dependency build failed: exit 2" in state.tasks["app"].reason
        assert engine.exit_code() == 1

    run(session(engine, body))


def test_dependency_that_fails_to_spawn_blocks_its_dependent(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path,
        """
        tasks:
          db: {cmd: [no-such-program-devster]}
          app: {cmd: "echo never", depends_on: [db]}
        """,
    )

    async def body() -> None:
        state = await wait_state(engine, status_is("app", Status.BLOCKED))
        assert state.tasks["db"].status is Status.FAILED
        assert "not found: no-such-program-devster" in state.tasks["db"].reason
        assert "not found" in state.tasks["app"].reason

    run(session(engine, body))


@pytest.mark.parametrize(("rule", "expected_runs"), [("restart", 2), ("ignore", 1)])
def test_on_restart_rule_decides_whether_the_dependent_restarts(
    tmp_path: Path, rule: str, expected_runs: int
) -> None:
    engine = make_engine(
        tmp_path,
        f"""
        tasks:
          db: {{cmd: "sleep 30"}}
          api:
            cmd: "sleep 30"
            depends_on: {{db: {{condition: started, on_restart: {rule}}}}}
        """,
    )

    async def body() -> None:
        await wait_state(engine, status_is("api", Status.RUNNING))
        result = await engine.execute(Command("restart", ("db",)))
        assert result.ok
        await wait_state(engine, lambda s: s.tasks["db"].run == 2 and s.tasks["db"].pid is not None)
        if expected_runs == 2:
            await wait_state(
                engine, lambda s: s.tasks["api"].run == 2 and s.tasks["api"].pid is not None
            )
            # the dependent waited for the restarted dependency before spawning again
            db_spawn = events(engine, T.TASK_SPAWNED, "db")[1]
            assert db_spawn.seq < events(engine, T.TASK_SPAWNED, "api")[1].seq
        else:
            assert engine.store.state.tasks["api"].run == 1
            assert engine.store.state.tasks["api"].status is Status.RUNNING

    run(session(engine, body))


def test_on_restart_stop_rule_stops_the_dependent(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path,
        """
        tasks:
          db: {cmd: "sleep 30"}
          api: {cmd: "sleep 30", depends_on: {db: {condition: started, on_restart: stop}}}
        """,
    )

    async def body() -> None:
        await wait_state(engine, status_is("api", Status.RUNNING))
        await engine.execute(Command("restart", ("db",)))
        state = await wait_state(engine, status_is("api", Status.STOPPED))
        assert state.tasks["api"].reason == "dependency"

    run(session(engine, body))


def test_on_failure_stop_rule_stops_the_dependent_when_its_dependency_crashes(
    tmp_path: Path,
) -> None:
    engine = make_engine(
        tmp_path,
        """
        tasks:
          db: {cmd: "sleep 30", restart: {policy: on-failure, backoff: {initial: 10ms}}}
          api: {cmd: "sleep 30", depends_on: {db: {condition: started, on_failure: stop}}}
        """,
    )

    async def body() -> None:
        await wait_state(engine, status_is("api", Status.RUNNING))
        db_pid = engine.store.state.tasks["db"].pid
        assert db_pid is not None
        os.kill(db_pid, 9)
        state = await wait_state(engine, status_is("api", Status.STOPPED))
        assert state.tasks["api"].reason == "dependency"

    run(session(engine, body))


def test_start_command_brings_back_a_stopped_task(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, 'tasks: {svc: {cmd: "sleep 30"}}')

    async def body() -> None:
        await wait_state(engine, status_is("svc", Status.RUNNING))
        await engine.execute(Command("stop", ("svc",)))
        result = await engine.execute(Command("start", ("svc",)))
        assert result.ok, result.message
        state = await wait_state(
            engine, lambda s: s.tasks["svc"].run == 2 and s.tasks["svc"].pid is not None
        )
        assert state.tasks["svc"].status is Status.RUNNING

    run(session(engine, body))


# --------------------------------------------------------------------------- restart policies


def test_policy_no_leaves_a_crashed_service_exited(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, 'tasks: {svc: {cmd: "exit 3", restart: "no"}}')

    async def body() -> None:
        await engine.wait_finished()
        task = engine.store.state.tasks["svc"]
        assert (task.status, task.run, task.last_exit and task.last_exit.code) == (
            Status.EXITED,
            1,
            3,
        )
        assert engine.exit_code() == 1

    run(session(engine, body))


def test_on_failure_does_not_restart_a_clean_exit(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, 'tasks: {svc: {cmd: "exit 0", restart: on-failure}}')

    async def body() -> None:
        await engine.wait_finished()
        assert engine.store.state.tasks["svc"].run == 1
        assert engine.exit_code() == 0

    run(session(engine, body))


def test_on_failure_restarts_until_max_restarts_then_fails_with_last_lines(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path,
        """
        tasks:
          svc:
            cmd: 'echo "boom $$$$"; exit 1'
            restart:
              policy: on-failure
              max_restarts: 2
              window: 1m
              backoff: {initial: 10ms, jitter: 0}
        """,
    )

    async def body() -> None:
        state = await wait_state(engine, status_is("svc", Status.FAILED))
        task = state.tasks["svc"]
        assert task.run == 3
        assert "restarted 2 times within 60s" in task.reason
        failed = events(engine, T.TASK_FAILED, "svc")[0]
        assert failed.data["last_exit"] == "exit 1"
        assert any(line.startswith("boom ") for line in failed.data["last_lines"])

    run(session(engine, body))


def test_always_restarts_even_a_successful_exit_with_growing_backoff(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path,
        """
        tasks:
          svc:
            cmd: "true"
            restart:
              policy: always
              max_restarts: 3
              backoff: {initial: 20ms, factor: 2, max: 1s, jitter: 0}
        """,
    )

    async def body() -> None:
        # The limit is reached through clean exits: that is no failure (issue 12 item 6).
        await wait_state(engine, status_is("svc", Status.EXITED))
        delays = [e.data["delay"] for e in events(engine, T.TASK_BACKOFF, "svc")]
        assert delays == [0.02, 0.04, 0.08]

    run(session(engine, body))


def test_stop_during_backoff_cancels_the_respawn(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path,
        """
        tasks:
          svc: {cmd: "exit 1", restart: {policy: always, backoff: {initial: 20s}}}
        """,
    )

    async def body() -> None:
        await wait_state(engine, status_is("svc", Status.BACKOFF))
        result = await engine.execute(Command("stop", ("svc",)))
        assert result.ok
        state = engine.store.state
        assert state.tasks["svc"].status is Status.STOPPED
        assert not engine.runner("svc").active
        assert len(events(engine, T.TASK_STARTING, "svc")) == 1

    run(session(engine, body))


def test_explicitly_stopped_service_is_never_restarted(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path,
        """
        tasks:
          svc: {cmd: "sleep 30", restart: {policy: always, backoff: {initial: 10ms}}}
        """,
    )

    async def body() -> None:
        await wait_state(engine, status_is("svc", Status.RUNNING))
        await engine.execute(Command("stop", ("svc",)))
        assert engine.store.state.tasks["svc"].status is Status.STOPPED
        assert not engine.runner("svc").active
        assert [e.data["stopped"] for e in events(engine, T.TASK_EXITED, "svc")] == [True]

    run(session(engine, body))


def test_restart_never_overlaps_two_live_instances(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path,
        """
        tasks:
          svc: {cmd: "trap 'sleep 0.2; exit 0' TERM; sleep 30 & wait"}
        """,
    )

    async def body() -> None:
        await wait_state(engine, status_is("svc", Status.RUNNING))
        await engine.execute(Command("restart", ("svc",)))
        await engine.execute(Command("restart", ("svc",)))
        await wait_state(
            engine, lambda s: s.tasks["svc"].run >= 2 and s.tasks["svc"].pid is not None
        )
        order = [
            e.type for e in events(engine, task="svc") if e.type in (T.TASK_SPAWNED, T.TASK_EXITED)
        ]
        live = 0
        for kind in order:
            live += 1 if kind == T.TASK_SPAWNED else -1
            assert live <= 1, order

    run(session(engine, body))


def test_spawn_failure_is_a_failed_task_not_exit_127(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, "tasks: {svc: {cmd: [devster-missing-binary], restart: always}}")

    async def body() -> None:
        state = await wait_state(engine, status_is("svc", Status.FAILED))
        assert state.tasks["svc"].last_exit is None
        assert events(engine, T.TASK_SPAWN_FAILED, "svc")[0].data["error"].startswith("not found")

    run(session(engine, body))


# --------------------------------------------------------------------------- health, jobs, alarms


def test_failing_liveness_check_restarts_the_task_by_policy(tmp_path: Path) -> None:
    port = free_port()
    engine = make_engine(
        tmp_path,
        f"""
        tasks:
          svc:
            cmd: "sleep 30"
            restart: {{policy: on-failure, max_restarts: 1, backoff: {{initial: 10ms}}}}
            liveness: {{tcp: {port}, interval: 50ms, retries: 2}}
        """,
    )

    async def body() -> None:
        await wait_state(engine, lambda s: s.tasks["svc"].run >= 2)
        stopping = events(engine, T.TASK_STOPPING, "svc")
        assert stopping[0].data["reason"] == "liveness"
        assert events(engine, T.TASK_EXITED, "svc")[0].data["success"] is False

    run(session(engine, body))


def test_exec_health_check_runs_through_the_executor(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path,
        """
        tasks:
          svc:
            cmd: "sleep 0.2; touch ready; sleep 30"
            health: {exec: "test -f ready", interval: 50ms, retries: 1}
        """,
    )

    async def body() -> None:
        state = await wait_state(engine, status_is("svc", Status.HEALTHY))
        assert state.tasks["svc"].health_detail == "exit 0"

    run(session(engine, body))


def test_ready_log_line_sets_log_ready_and_releases_dependents(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path,
        """
        tasks:
          srv:
            cmd: "echo booting; sleep 0.1; echo listening on 80; sleep 30"
            ready_log: "listening on \\\\d+"
          app: {cmd: "echo go", kind: job, depends_on: {srv: {condition: log_ready}}}
        """,
    )

    async def body() -> None:
        await wait_state(engine, status_is("app", Status.SUCCEEDED))
        ready = events(engine, T.TASK_LOG_READY, "srv")
        assert ready[0].data["line"] == "listening on 80"

    run(session(engine, body))


def test_ready_log_subscriber_stays_on_the_output_path_after_it_matched(
    tmp_path: Path,
) -> None:
    engine = make_engine(
        tmp_path,
        """
        tasks:
          srv:
            cmd: "echo listening; echo up; sleep 30"
            ready_log: listening
            health: {log: up}
        """,
    )

    async def body() -> None:
        await wait_state(engine, lambda s: "srv" in s.tasks and s.tasks["srv"].log_ready)
        await wait_state(engine, status_is("srv", Status.HEALTHY))
        # Both one-shot rules fired: no per-line callback is left on the hot path.
        assert engine.output._tasks["srv"].subs == []
        assert len(events(engine, T.TASK_LOG_READY, "srv")) == 1

    run(session(engine, body))


def test_job_exceeding_its_timeout_is_killed_and_failed(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, 'tasks: {job: {cmd: "sleep 30", kind: job, timeout: 300ms}}')

    async def body() -> None:
        state = await wait_state(engine, status_is("job", Status.FAILED))
        assert state.tasks["job"].reason == "timed out after 0.3s"

    run(session(engine, body))


def test_listed_success_exit_code_counts_as_success(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path, 'tasks: {job: {cmd: "exit 3", kind: job, success_exit_codes: [0, 3]}}'
    )

    async def body() -> None:
        await wait_state(engine, status_is("job", Status.SUCCEEDED))
        assert engine.exit_code() == 0

    run(session(engine, body))


def test_crash_loop_raises_an_alarm(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path,
        """
        tasks:
          svc:
            cmd: "exit 1"
            restart: {policy: always, max_restarts: 3, backoff: {initial: 10ms}}
            alarms: {crash_loop: 2, crash_loop_window: 1m}
        """,
    )

    async def body() -> None:
        await wait_state(engine, lambda s: "crash_loop" in s.tasks["svc"].alarms)

    run(session(engine, body))


def test_task_stuck_starting_raises_an_alarm(tmp_path: Path) -> None:
    port = free_port()
    engine = make_engine(
        tmp_path,
        f"""
        tasks:
          svc:
            cmd: "sleep 30"
            health: {{tcp: {port}, interval: 50ms}}
            alarms: {{stuck_starting: 200ms}}
        """,
    )

    async def body() -> None:
        await wait_state(engine, lambda s: "stuck_starting" in s.tasks["svc"].alarms)

    run(session(engine, body))


# --------------------------------------------------------------------------- ensure, ports, files


def test_ensure_steps_run_before_the_spawn(tmp_path: Path) -> None:
    (tmp_path / "conf.tpl").write_text("port=${ports.http} user=${APP_USER}\n")
    engine = make_engine(
        tmp_path,
        f"""
        tasks:
          job:
            kind: job
            cmd: "cat out/app.conf; test -d data/cache"
            env: {{APP_USER: alice}}
            ports: {{http: {free_port()}}}
            ensure:
              - mkdir: data/cache
              - template: {{src: conf.tpl, dest: out/app.conf}}
        """,
    )

    async def body() -> None:
        await wait_state(engine, status_is("job", Status.SUCCEEDED, Status.EXITED, Status.FAILED))
        assert engine.store.state.tasks["job"].status is Status.SUCCEEDED
        lines = [line.text for line in engine.output.tail("job", "stdout", 5)]
        assert lines[-1].startswith("port=") and lines[-1].endswith(" user=alice")

    run(session(engine, body))


def test_declared_port_in_use_fails_with_the_owner_named(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    engine = make_engine(tmp_path, f'tasks: {{web: {{cmd: "sleep 30", ports: {{http: {port}}}}}}}')

    async def body() -> None:
        state = await wait_state(engine, status_is("web", Status.FAILED))
        assert f"port {port} in use by pid {os.getpid()}" in state.tasks["web"].reason
        assert not events(engine, T.TASK_SPAWNED, "web")

    try:
        run(session(engine, body))
    finally:
        holder.close()


def test_state_dir_holds_event_log_and_output_logs_owner_only(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, 'tasks: {job: {cmd: "echo hello; echo oops >&2", kind: job}}')

    async def body() -> None:
        await engine.start()
        await engine.wait_finished()
        await engine.shutdown()

    run(body())
    state_dir = tmp_path / ".devster"
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    files = [p for p in state_dir.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    out_log = engine.output.log_path("job", "stdout")
    err_log = engine.output.log_path("job", "stderr")
    assert out_log is not None and out_log.read_bytes() == b"hello\n"
    assert err_log is not None and err_log.read_bytes() == b"oops\n"
    from devster_tui.state.eventlog import read_events, replay

    recorded, warnings = read_events(state_dir / "events")
    assert not warnings
    assert replay(recorded).tasks["job"].status is Status.SUCCEEDED


def test_observe_mode_task_refuses_stop_without_confirmation(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, 'tasks: {tail: {cmd: "sleep 30", mode: observe}}')

    async def body() -> None:
        await wait_state(engine, status_is("tail", Status.RUNNING))
        refused = await engine.execute(Command("stop", ("tail",)))
        assert not refused.ok and refused.needs_confirmation
        done = await engine.execute(Command("stop", ("tail",), confirmed=True))
        assert done.ok
        assert engine.store.state.tasks["tail"].status is Status.STOPPED

    run(session(engine, body))


@pytest.mark.slow
def test_million_lines_and_a_final_partial_line_all_reach_the_log_in_order(
    tmp_path: Path,
) -> None:
    gen = (
        "import sys; w=sys.stdout.write\n"
        "for i in range(1000000): w(f'line {i:07d} ' + 'x'*60 + chr(10))\n"
        "w('partial-end')"
    )
    (tmp_path / "gen.py").write_text(gen)
    engine = make_engine(
        tmp_path, "logs: {max_bytes: 200MiB}\ntasks: {gen: {cmd: [PY, gen.py], kind: job}}"
    )

    async def body() -> None:
        await engine.start()
        await engine.wait_finished()
        await engine.shutdown()

    run(body(), limit=110)
    assert engine.store.state.tasks["gen"].status is Status.SUCCEEDED
    path = engine.output.log_path("gen", "stdout")
    assert path is not None
    data = path.read_bytes()
    lines = data.split(b"\n")
    assert lines[-1] == b"partial-end"
    assert len(lines) == 1_000_001
    expected = b"".join(b"line %07d " % i + b"x" * 60 + b"\n" for i in range(1_000_000))
    assert data == expected + b"partial-end"


def test_failing_background_job_of_the_engine_is_logged_not_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(tmp_path, 'tasks: {job: {cmd: "true", kind: job}}')

    async def broken() -> None:
        raise RuntimeError("trigger restart broke")

    async def body() -> None:
        # The guarded task ends normally once its failure is logged: awaiting it is enough.
        await asyncio.wait_for(engine.spawn(broken(), "trigger restart of job"), 10)

    with caplog.at_level("ERROR", logger="devster_tui.engine.supervisor"):
        run(session(engine, body))
    record = next(r for r in caplog.records if r.name == "devster_tui.engine.supervisor")
    assert record.exc_info is not None and "trigger restart broke" in str(record.exc_info[1])
