"""Manual gates with a real engine: held once dependencies are met, approved once or always."""

from __future__ import annotations

from pathlib import Path

from devster_tui.state.commands import Command
from devster_tui.state.events import T
from devster_tui.state.model import Status
from tests.test_supervisor import events, make_engine, run, session, status_is, wait_state

GATED = """
observers:
  go: {manual: {prompt: "Run integration?"}}
tasks:
  api: {cmd: "echo ready; while [ ! -e up ]; do sleep 0.01; done; sleep 30", ready_log: ready}
  it:
    cmd: "echo ran >> runs.txt"
    kind: job
    triggers: [go]
    depends_on: {api: {condition: log_ready}}
"""


def test_gate_waits_with_its_prompt_once_dependencies_are_met_and_approve_runs_it(
    tmp_path: Path,
) -> None:
    engine = make_engine(tmp_path, GATED)

    async def body() -> None:
        state = await wait_state(engine, status_is("it", Status.GATED))
        assert state.tasks["it"].gate_prompt == "Run integration?"
        assert state.tasks["api"].log_ready
        assert not (tmp_path / "runs.txt").exists()
        assert (await engine.execute(Command("approve", ("it",), by="tui"))).ok
        await wait_state(engine, status_is("it", Status.SUCCEEDED))
        # Approved once: the next run waits at the gate again.
        assert (await engine.execute(Command("trigger", ("api",)))).ok
        await engine.execute(Command("approve", ("it",)))
        await wait_state(engine, lambda s: s.tasks["it"].run == 2)
        await wait_state(engine, status_is("it", Status.SUCCEEDED))
        assert (tmp_path / "runs.txt").read_text() == "ran\nran\n"

    run(session(engine, body))


def test_gate_is_not_shown_before_dependencies_are_met_and_an_early_approval_is_kept(
    tmp_path: Path,
) -> None:
    engine = make_engine(
        tmp_path,
        GATED.replace("ready_log: ready", "ready_log: never-printed"),
    )

    async def body() -> None:
        await wait_state(engine, status_is("it", Status.WAITING))
        assert not events(engine, T.TASK_GATE, "it")
        await engine.execute(Command("approve", ("it",)))
        assert engine.store.state.tasks["it"].status is Status.WAITING

    run(session(engine, body))


def test_approve_always_opens_the_gate_for_the_session(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, GATED)

    async def body() -> None:
        await wait_state(engine, status_is("it", Status.GATED))
        await engine.execute(Command("approve", ("it",), always=True))
        await wait_state(engine, status_is("it", Status.SUCCEEDED))
        await engine.execute(Command("trigger", ("it",)))
        await wait_state(engine, lambda s: s.tasks["it"].run == 2)
        await wait_state(engine, status_is("it", Status.SUCCEEDED))
        assert len([e for e in events(engine, T.TASK_GATE, "it") if e.data["waiting"]]) == 1

    run(session(engine, body))


def test_trigger_by_observer_name_approves_the_gate_like_devster_trigger(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, GATED)

    async def body() -> None:
        await wait_state(engine, status_is("it", Status.GATED))
        result = await engine.execute(Command("trigger", ("go",), by="cli"))
        assert result.ok, result.message
        await wait_state(engine, status_is("it", Status.SUCCEEDED))

    run(session(engine, body))


def test_approve_refuses_a_task_without_a_gate(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, GATED)

    async def body() -> None:
        result = await engine.execute(Command("approve", ("api",)))
        assert not result.ok and "no manual gate" in result.message

    run(session(engine, body))


def test_a_gated_task_named_on_the_command_line_runs_without_waiting(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, GATED)

    async def body() -> None:
        await wait_state(engine, status_is("it", Status.SUCCEEDED))
        assert not events(engine, T.TASK_GATE, "it")

    run(session(engine, body, ("it",)))
