"""Issue 12's numbered items, each pinned as a user meets it: a project file, the real CLI,
real processes, and what the user reads (exit codes, ``devster ps``, the event log).

Every test here failed on main before the lifecycle rework (docs/lifecycle.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from devster_tui.state.eventlog import read_events
from tests.helpers import devster_cli, wait_for
from tests.test_api_support import runtime_env, write_project


@contextlib.contextmanager
def detached(tmp: Path, yaml: str) -> Iterator[dict[str, str]]:
    """``devster up -d`` on ``yaml`` in ``tmp``; ``devster down --force`` afterwards."""
    with runtime_env():
        env = dict(os.environ)
        write_project(tmp, yaml)
        started = devster_cli("up", "-d", cwd=tmp, env=env, timeout=90)
        assert started.returncode == 0, started.stdout + started.stderr
        try:
            yield env
        finally:
            devster_cli("down", "--force", cwd=tmp, env=env, timeout=60)


def cli(tmp: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return devster_cli(*args, cwd=tmp, env=env, timeout=90)


def ps(tmp: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    done = cli(tmp, env, "ps", "--json")
    assert done.returncode == 0, done.stderr
    return {t["name"]: t for t in json.loads(done.stdout)["tasks"]}


def events(tmp: Path) -> list[tuple[str, str | None, dict[str, Any]]]:
    """Every event the engine(s) of ``tmp`` recorded: (type, task, data)."""
    recorded, _warnings = read_events(tmp / ".devster" / "events")
    return [(e.type, e.task, dict(e.data)) for e in recorded]


def count(tmp: Path, kind: str, task: str) -> int:
    return sum(1 for t, name, _d in events(tmp) if t == kind and name == task)


# -- item 1 -----------------------------------------------------------------------------


def test_item1_a_server_is_not_restarted_after_its_migration_job_ran_once(tmp_path: Path) -> None:
    project = """
    tasks:
      migrate: {cmd: "echo migrating", kind: job}
      api: {cmd: "sleep 300.1201", depends_on: [migrate]}
    """
    with detached(tmp_path, project) as env:
        assert cli(tmp_path, env, "wait", "migrate", "--for", "succeeded").returncode == 0
        assert cli(tmp_path, env, "wait", "api", "--for", "running").returncode == 0
        # The cascade (if any) is decided in the same step as migrate's success.
        assert count(tmp_path, "task.stopping", "api") == 0
        assert count(tmp_path, "task.starting", "api") == 1
        assert ps(tmp_path, env)["api"]["run"] == 1


def test_item1_a_job_depending_on_a_job_runs_once(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        """
        tasks:
          p2: {cmd: "echo p2", kind: job}
          p1: {cmd: "echo p1", kind: job, depends_on: [p2]}
        """,
    )
    with runtime_env():
        done = devster_cli("run", "p1", cwd=tmp_path, env=dict(os.environ))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("p1      | p1") == 1, done.stdout
    assert count(tmp_path, "task.starting", "p1") == 1


# -- item 2 -----------------------------------------------------------------------------


def test_item2_a_detached_engine_survives_stopping_its_last_service(tmp_path: Path) -> None:
    with detached(tmp_path, 'tasks: {svc: {cmd: "sleep 300.1202"}}') as env:
        stopped = cli(tmp_path, env, "stop", "svc")
        assert stopped.returncode == 0, stopped.stderr
        assert ps(tmp_path, env)["svc"]["status"] == "stopped"
        started = cli(tmp_path, env, "start", "svc")
        assert started.returncode == 0, started.stdout + started.stderr
        assert cli(tmp_path, env, "wait", "svc", "--for", "running").returncode == 0


def test_item2_up_d_with_only_watched_jobs_not_autostarted_stays_up(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    project = """
    observers:
      src: {files: {paths: [src/]}}
    tasks:
      build: {cmd: "echo built", kind: job, triggers: [src], autostart: false}
    """
    with detached(tmp_path, project) as env:
        assert ps(tmp_path, env)["build"]["status"] == "defined"
        (tmp_path / "src" / "a.txt").write_text("x")
        assert cli(tmp_path, env, "wait", "build", "--for", "succeeded").returncode == 0


WATCHED_JOB = """
observers:
  src: {files: {paths: [src/]}}
tasks:
  build: {cmd: "echo built", kind: job, triggers: [src]}
"""
"""A job that a file change in src/ runs again."""


def test_item2_up_no_tui_keeps_a_watched_job_alive_until_ctrl_c(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    write_project(tmp_path, WATCHED_JOB)
    with runtime_env():
        proc = subprocess.Popen(
            [sys.executable, "-m", "devster_tui", "up", "--no-tui"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            assert proc.stdout is not None
            os.set_blocking(proc.stdout.fileno(), False)
            seen = bytearray()

            def printed(text: bytes, times: int = 1) -> bool:
                with contextlib.suppress(BlockingIOError, TypeError):
                    seen.extend(proc.stdout.read() or b"")  # type: ignore[union-attr]
                return seen.count(text) >= times

            wait_for(lambda: printed(b"build   * succeeded"), 30, what="the first build")
            assert proc.poll() is None, seen.decode()  # it used to end here
            (tmp_path / "src" / "a.txt").write_text("x")
            wait_for(lambda: printed(b"build   * succeeded", 2), 30, what="the re-run")
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 130
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_item2_exit_when_done_keeps_the_old_behaviour_for_scripts(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    write_project(tmp_path, WATCHED_JOB)
    with runtime_env():
        done = devster_cli("up", "--no-tui", "--exit-when-done", cwd=tmp_path, env=dict(os.environ))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "build   * succeeded" in done.stdout


# -- item 3 -----------------------------------------------------------------------------


def test_item3_stopping_a_finished_watched_job_switches_its_triggers_off(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    project = """
    observers:
      src: {files: {paths: [src/]}}
    tasks:
      job: {cmd: "echo job", kind: job, triggers: [src]}
      canary: {cmd: "echo canary", kind: job, triggers: [src]}
    """
    with detached(tmp_path, project) as env:
        assert cli(tmp_path, env, "wait", "job", "--for", "succeeded").returncode == 0
        stopped = cli(tmp_path, env, "stop", "job")
        assert stopped.returncode == 0
        assert "job was not running; triggers off" in stopped.stdout + stopped.stderr
        assert ps(tmp_path, env)["job"]["status"] == "stopped"
        (tmp_path / "src" / "a.txt").write_text("x")
        # One burst triggers both in the same step: once canary ran again, job would have.
        wait_for(lambda: ps(tmp_path, env)["canary"]["run"] == 2, 30, what="the canary re-run")
        assert ps(tmp_path, env)["job"]["status"] == "stopped"
        assert count(tmp_path, "task.starting", "job") == 1
        assert cli(tmp_path, env, "start", "job").returncode == 0  # the user re-arms it
        assert cli(tmp_path, env, "wait", "job", "--for", "succeeded").returncode == 0


# -- item 4 -----------------------------------------------------------------------------


def test_item4_wait_for_succeeded_on_a_running_job_answers_succeeded(tmp_path: Path) -> None:
    project = 'tasks: {quick: {cmd: "sleep 0.3", kind: job, autostart: false}}'
    with detached(tmp_path, project) as env:
        for _ in range(3):
            assert cli(tmp_path, env, "start", "quick").returncode == 0
            waited = cli(tmp_path, env, "wait", "quick", "--for", "succeeded", "--timeout", "30")
            assert waited.returncode == 0, waited.stderr


# -- item 5 -----------------------------------------------------------------------------


def test_item5_restart_after_the_restart_limit_runs_the_policy_again(tmp_path: Path) -> None:
    project = """
    tasks:
      crash:
        cmd: "exit 1"
        restart: {policy: on-failure, max_restarts: 2, window: 1h, backoff: {initial: 10ms}}
    """
    with detached(tmp_path, project) as env:
        failed = cli(tmp_path, env, "wait", "crash", "--for", "stopped", "--timeout", "30")
        assert failed.returncode == 0
        assert ps(tmp_path, env)["crash"]["status"] == "failed"
        assert count(tmp_path, "task.starting", "crash") == 3
        assert cli(tmp_path, env, "restart", "crash").returncode == 0
        wait_for(
            lambda: (
                count(tmp_path, "task.starting", "crash") == 6
                and ps(tmp_path, env)["crash"]["status"] == "failed"
            ),
            30,
            what="three more runs after the restart",
        )
        resets = [d for t, n, d in events(tmp_path) if t == "task.starting" and d.get("reset")]
        assert len(resets) == 1


# -- items 6, 7 ---------------------------------------------------------------------------


def test_item6_a_restart_limit_reached_by_clean_exits_is_success(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        """
        tasks:
          warm:
            cmd: "true"
            kind: job
            restart: {policy: always, max_restarts: 1, backoff: {initial: 10ms}}
          after: {cmd: "echo after", kind: job, depends_on: {warm: {condition: succeeded}}}
        """,
    )
    with runtime_env():
        done = devster_cli("run", "after", cwd=tmp_path, env=dict(os.environ))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "after   | after" in done.stdout


def test_item7_success_exit_codes_add_codes_to_zero(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        """
        tasks:
          zero: {cmd: "exit 0", kind: job, success_exit_codes: [130]}
          sigint: {cmd: "exit 130", kind: job, success_exit_codes: [130]}
        """,
    )
    with runtime_env():
        done = devster_cli("run", "zero", "sigint", cwd=tmp_path, env=dict(os.environ))
    assert done.returncode == 0, done.stdout + done.stderr


# -- item 8 -----------------------------------------------------------------------------


def test_item8_completed_is_met_when_the_user_stops_the_job(tmp_path: Path) -> None:
    project = """
    tasks:
      a: {cmd: "sleep 300.1208", kind: job}
      b: {cmd: "sleep 300.1209", depends_on: {a: {condition: completed}}}
    """
    with detached(tmp_path, project) as env:
        assert ps(tmp_path, env)["b"]["status"] == "waiting"
        assert cli(tmp_path, env, "stop", "a").returncode == 0
        assert cli(tmp_path, env, "wait", "b", "--for", "running").returncode == 0


# -- devster run and --exit-on-failure ---------------------------------------------------


def test_run_exits_with_the_first_failed_jobs_own_code_and_a_summary(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        """
        tasks:
          unit: {cmd: "exit 3", kind: job}
          e2e: {cmd: "echo e2e", kind: job, depends_on: {unit: {condition: succeeded}}}
        """,
    )
    with runtime_env():
        done = devster_cli("run", "unit", "e2e", cwd=tmp_path, env=dict(os.environ))
    assert done.returncode == 3, done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("devster run: failed: unit (exit 3); e2e (blocked"), done.stderr


def test_up_exit_on_failure_stops_everything_with_the_tasks_code(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        """
        tasks:
          server: {cmd: "sleep 300.1210"}
          flaky: {cmd: "sleep 0.2; exit 7"}
        """,
    )
    with runtime_env():
        done = devster_cli(
            "up", "--no-tui", "--exit-on-failure", cwd=tmp_path, env=dict(os.environ)
        )
    assert done.returncode == 7, done.stdout + done.stderr
    assert "server  * stopped" in done.stdout


# -- item 11 and --no-deps ----------------------------------------------------------------


def test_item11_an_exit_carries_the_last_lines_of_its_own_run_only(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        """
        tasks:
          flaky:
            cmd: >-
              n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n;
              echo "run $n out"; exit 1
            kind: job
            restart: {policy: on-failure, max_restarts: 1, backoff: {initial: 10ms}}
        """,
    )
    with runtime_env():
        done = devster_cli("run", "flaky", cwd=tmp_path, env=dict(os.environ))
    assert done.returncode == 1, done.stdout + done.stderr
    exits = [d for t, n, d in events(tmp_path) if t == "task.exited" and n == "flaky"]
    assert [e["last_lines"] for e in exits] == [["run 1 out"], ["run 2 out"]]


def test_item11_a_stop_command_is_announced_as_a_command_not_a_signal(tmp_path: Path) -> None:
    project = """
    tasks:
      svc:
        cmd: "echo $$$$ > pid; exec sleep 300.1211"  # $$ is devster's escaped $
        stop: {command: "kill $(cat pid)"}
      keep: {cmd: "sleep 300.1212"}
    """
    with detached(tmp_path, project) as env:
        assert cli(tmp_path, env, "wait", "svc", "--for", "running").returncode == 0
        wait_for(lambda: (tmp_path / "pid").exists(), 30, what="the pid file")
        assert cli(tmp_path, env, "stop", "svc").returncode == 0
        stopping = [d for t, n, d in events(tmp_path) if t == "task.stopping" and n == "svc"]
        assert [d["signal"] for d in stopping] == ["command"]
        assert ps(tmp_path, env)["svc"]["status"] == "stopped"


def test_up_no_deps_starts_a_task_without_its_dependencies(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        """
        tasks:
          db: {cmd: "sleep 300.1213"}
          api: {cmd: "sleep 300.1214", depends_on: [db]}
        """,
    )
    with runtime_env():
        env = dict(os.environ)
        started = devster_cli("up", "-d", "--no-deps", "api", cwd=tmp_path, env=env, timeout=90)
        assert started.returncode == 0, started.stdout + started.stderr
        try:
            assert cli(tmp_path, env, "wait", "api", "--for", "running").returncode == 0
            assert ps(tmp_path, env)["db"]["status"] == "defined"
        finally:
            devster_cli("down", "--force", cwd=tmp_path, env=env, timeout=60)
