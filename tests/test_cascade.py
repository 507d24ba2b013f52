"""Cascades with real files and processes: a re-run build restarts dependents on success only."""

from __future__ import annotations

from pathlib import Path

from devster_tui.state.events import T
from devster_tui.state.model import Status
from tests.test_supervisor import events, make_engine, run, session, status_is, wait_state
from tests.test_triggers import ready

LOOP = """
observers:
  src: {files: {paths: [src]}}
tasks:
  build: {cmd: "test ! -e src/broken", kind: job, triggers: [src]}
  api:
    cmd: "sleep 30"
    depends_on: {build: {condition: succeeded, on_restart: restart}}
  worker:
    cmd: "sleep 30"
    depends_on: {api: {condition: started, on_restart: RULE}}
"""


def test_a_triggered_build_that_succeeds_restarts_dependents_after_it_succeeds(
    tmp_path: Path,
) -> None:
    (tmp_path / "src").mkdir()
    engine = make_engine(tmp_path, LOOP.replace("RULE", "restart"))

    async def body() -> None:
        await ready(engine)
        await wait_state(engine, status_is("worker", Status.RUNNING))
        (tmp_path / "src" / "a.py").write_text("1")
        await wait_state(engine, lambda s: s.tasks["api"].run == 2 and s.tasks["worker"].run == 2)
        build_ok = events(engine, T.TASK_SUCCEEDED, "build")[1]
        api_restart = events(engine, T.TASK_STOPPING, "api")[0]
        assert build_ok.seq < api_restart.seq

    run(session(engine, body))


def test_dependents_of_a_restarted_service_follow_their_stop_rule(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    engine = make_engine(tmp_path, LOOP.replace("RULE", "stop"))

    async def body() -> None:
        await ready(engine)
        await wait_state(engine, status_is("worker", Status.RUNNING))
        (tmp_path / "src" / "a.py").write_text("1")
        await wait_state(engine, status_is("worker", Status.STOPPED))

    run(session(engine, body))


def test_a_failed_build_keeps_the_old_services_running_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    engine = make_engine(tmp_path, LOOP.replace("RULE", "restart"))

    async def body() -> None:
        await ready(engine)
        state = await wait_state(engine, status_is("worker", Status.RUNNING))
        pid = state.tasks["api"].pid
        (tmp_path / "src" / "broken").write_text("1")
        state = await wait_state(
            engine, lambda s: s.tasks["build"].run == 2 and s.tasks["build"].status is Status.FAILED
        )
        assert state.tasks["api"].pid == pid and state.tasks["api"].run == 1
        assert any("keep running the previous build" in w for w in state.warnings)

    run(session(engine, body))


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_dev_loop_example_save_builds_restarts_the_server_and_runs_the_unit_tests(
    tmp_path: Path,
) -> None:
    import shutil

    from devster_tui.config.loader import load_project
    from devster_tui.engine.supervisor import Engine

    root = tmp_path / "dev-loop"
    shutil.copytree(EXAMPLES / "dev-loop", root, ignore=shutil.ignore_patterns(".devster", "build"))
    engine = Engine(load_project(root / "devster.yaml"))

    async def body() -> None:
        await ready(engine, "sources")
        await wait_state(engine, lambda s: s.tasks["server"].log_ready)
        await wait_state(engine, status_is("unit-tests", Status.SUCCEEDED))
        app = root / "src" / "app.py"
        app.write_text(app.read_text().replace("hello", "hi"))
        await wait_state(
            engine, lambda s: s.tasks["server"].run == 2 and s.tasks["server"].log_ready
        )
        await wait_state(
            engine,
            lambda s: (
                s.tasks["unit-tests"].run == 2 and s.tasks["unit-tests"].status is Status.SUCCEEDED
            ),
        )
        assert b"serving: hi, world" in b"\n".join(
            line.data for line in engine.output.tail("server", "stdout", 5)
        )
        app.write_text("def greet(\n")
        state = await wait_state(
            engine, lambda s: s.tasks["build"].run == 3 and s.tasks["build"].status is Status.FAILED
        )
        assert state.tasks["server"].run == 2 and state.tasks["server"].status is Status.RUNNING

    run(session(engine, body), 60)


def test_gated_integration_example_waits_for_approval_then_passes(tmp_path: Path) -> None:
    import shutil

    from devster_tui.config.loader import load_project
    from devster_tui.engine.supervisor import Engine
    from devster_tui.state.commands import Command
    from tests.test_supervisor import free_port

    root = tmp_path / "gated"
    shutil.copytree(EXAMPLES / "gated-integration", root, ignore=shutil.ignore_patterns(".devster"))
    config = root / "devster.yaml"
    config.write_text(config.read_text().replace("8766", str(free_port())))
    engine = Engine(load_project(config))

    async def body() -> None:
        state = await wait_state(engine, status_is("integration", Status.GATED))
        assert (
            state.tasks["integration"].gate_prompt == "Run the integration tests against the API?"
        )
        assert (await engine.execute(Command("trigger", ("go",), by="cli"))).ok
        await wait_state(engine, status_is("integration", Status.SUCCEEDED))

    run(session(engine, body), 60)
