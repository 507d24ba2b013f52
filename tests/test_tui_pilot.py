"""Pilot tests of the cockpit over recorded scenes: every action, view, search and theme."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.pilot import Pilot

from devster_tui.state.commands import Command, CommandResult
from devster_tui.state.events import T
from devster_tui.tui.app import CockpitApp
from devster_tui.tui.keymap import KEYMAP
from devster_tui.tui.screens.detail import MASK, DetailScreen
from devster_tui.tui.screens.dialogs import ConfirmScreen, StdinScreen
from devster_tui.tui.screens.graph import GraphScreen, GraphView
from devster_tui.tui.screens.help import HelpScreen
from devster_tui.tui.screens.multipane import MultiPaneScreen
from devster_tui.tui.widgets.logview import LogView
from devster_tui.tui.widgets.tasklist import TaskList
from tests.test_tui_scenes import RecordingController, Scene, load_scene

SIZE = (100, 30)


def make_app(
    scene: Scene, controller: RecordingController | None = None, **kwargs: object
) -> tuple[CockpitApp, RecordingController]:
    ctl = controller or RecordingController()
    app = CockpitApp(
        scene.store,
        scene.output,
        ctl,
        clock=scene.clock,
        theme_dirs=kwargs.pop("theme_dirs", None),  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )
    return app, ctl


async def until(pilot: Pilot[int], cond: Callable[[], object], within: float = 5.0) -> None:
    """Poll ``cond`` between UI turns until true or the deadline passes."""
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await pilot.pause(0.01)


def run(test: Callable[[Pilot[int], CockpitApp], Awaitable[None]], app: CockpitApp) -> None:
    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await test(pilot, app)

    asyncio.run(main())


async def select(pilot: Pilot[int], app: CockpitApp, name: str) -> None:
    app.tasks.select(name)
    await until(pilot, lambda: app.log_pane.task_name == name)


def notices(app: CockpitApp) -> list[str]:
    return [n.message for n in app._notifications]


def test_each_action_key_sends_its_command_for_the_selected_task() -> None:
    app, ctl = make_app(load_scene("main"))
    expected = [
        ("r", Command("restart", ("api",), by="tui")),
        ("ctrl+r", Command("restart", ("api",), by="tui")),
        ("s", Command("start", ("api",), by="tui")),
        ("f7", Command("start", ("api",), by="tui")),
        ("x", Command("stop", ("api",), by="tui")),
        ("f9", Command("stop", ("api",), by="tui")),
        ("t", Command("trigger", ("api",), by="tui")),
        ("a", Command("approve", ("api",), by="tui")),
        ("A", Command("approve", ("api",), by="tui", always=True)),
        ("R", Command("set_autorestart", ("api",), by="tui", enabled=False)),
        ("W", Command("set_watch", ("api",), by="tui", enabled=False)),
    ]

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        await select(pilot, app, "api")
        for i, (key, _) in enumerate(expected):
            await pilot.press(key)
            await until(pilot, lambda i=i: len(ctl.commands) > i)  # type: ignore[misc]
        assert ctl.commands == [c for _, c in expected]

    run(test, app)


def test_action_on_observe_task_asks_first_and_sends_confirmed_only_after_yes() -> None:
    app, ctl = make_app(load_scene("main"))

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        await select(pilot, app, "prod-logs")
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert ctl.commands == []
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert ctl.commands == []
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: ctl.commands)
        assert ctl.commands == [Command("restart", ("prod-logs",), by="tui", confirmed=True)]
        # Start and trigger are not guarded: no question.
        await pilot.press("s")
        await until(pilot, lambda: len(ctl.commands) == 2)
        assert ctl.commands[1] == Command("start", ("prod-logs",), by="tui")

    run(test, app)


def test_engine_asking_for_confirmation_opens_the_dialog_and_resends_confirmed() -> None:
    ctl = RecordingController(refuse={"stop": CommandResult(False, "", needs_confirmation=True)})
    app, _ = make_app(load_scene("main"), ctl)

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        await select(pilot, app, "db")
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.click("#yes")
        await until(pilot, lambda: len(ctl.commands) == 2)
        assert ctl.commands[1].confirmed

    run(test, app)


def test_refused_command_is_reported_in_a_notification() -> None:
    ctl = RecordingController(refuse={"start": CommandResult(False, "db is already running")})
    app, _ = make_app(load_scene("main"), ctl)

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        await select(pilot, app, "db")
        await pilot.press("s")
        await until(pilot, lambda: "db is already running" in notices(app))

    run(test, app)


def test_typing_into_console_stdin_task_sends_each_line_with_newline() -> None:
    app, ctl = make_app(load_scene("main"))

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        await select(pilot, app, "shell")
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, StdinScreen))
        await pilot.press("l", "s", "enter", "q", "enter")
        await until(pilot, lambda: len(ctl.commands) == 2)
        assert [c.data for c in ctl.commands] == [b"ls\n", b"q\n"]
        assert all(c.action == "send_stdin" and c.tasks == ("shell",) for c in ctl.commands)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, StdinScreen))

    run(test, app)


def test_stdin_prompt_refused_for_task_whose_stdin_is_piped() -> None:
    app, ctl = make_app(load_scene("main"))

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        await select(pilot, app, "errors")
        await pilot.press("i")
        await until(pilot, lambda: any("not the console" in m for m in notices(app)))
        assert not isinstance(app.screen, StdinScreen)
        assert ctl.commands == []

    run(test, app)


def test_read_only_cockpit_sends_nothing() -> None:
    app, ctl = make_app(load_scene("main"), read_only=True)

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        await select(pilot, app, "db")
        await pilot.press("r", "x", "s", "t", "a")
        await until(pilot, lambda: any("read-only" in m for m in notices(app)))
        await pilot.pause()
        assert ctl.commands == []

    run(test, app)


def test_quit_key_exits_with_code_zero() -> None:
    app, _ = make_app(load_scene("main"))

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("q")
            await until(pilot, lambda: app.return_code is not None)

    asyncio.run(main())
    assert app.return_code == 0


def test_help_screen_lists_every_binding() -> None:
    app, _ = make_app(load_scene("main"))

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        from devster_tui.tui.screens.help import help_table

        rendered = _table_text(help_table())
        for key in KEYMAP:
            assert key.display() in rendered
            assert key.description in rendered
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))

    run(test, app)


def _table_text(table: object) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, file=open("/dev/null", "w"))
    console.print(table)
    return console.export_text()


def test_palette_reaches_every_action_and_every_theme() -> None:
    app, ctl = make_app(load_scene("main"))

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        await select(pilot, app, "api")
        commands = list(app.get_system_commands(app.screen))
        titles = [c.title for c in commands]
        for key in KEYMAP:
            if key.action in ("command_palette", "escape", "focus_next", "help", "quit"):
                continue
            assert any(t.startswith(key.description) for t in titles), key.description
        assert "Theme: devster-light" in titles
        assert "Theme: devster-dark" in titles
        light = next(c for c in commands if c.title == "Theme: devster-light")
        light.callback()
        await until(pilot, lambda: app.theme == "devster-light")
        restart = next(c for c in commands if c.title.startswith("Restart the selected task"))
        result = restart.callback()
        if asyncio.iscoroutine(result):
            await result
        await until(pilot, lambda: ctl.commands)
        assert ctl.commands == [Command("restart", ("api",), by="tui")]

    run(test, app)


def test_palette_opens_with_ctrl_p_and_runs_a_typed_action() -> None:
    app, ctl = make_app(load_scene("main"))

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        await select(pilot, app, "db")
        await pilot.press("ctrl+p")
        from textual.command import CommandPalette

        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        for ch in "Trigger the selected":
            await pilot.press(ch if ch != " " else "space")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: ctl.commands, within=10)
        assert ctl.commands[0] == Command("trigger", ("db",), by="tui")

    run(test, app)


def test_task_rows_update_in_place_and_notify_failures_alarms_and_gates() -> None:
    scene = load_scene("main")
    app, _ = make_app(scene)

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        table = app.query_one(TaskList)
        store = scene.store
        store.dispatch(T.TASK_FAILED, "db", reason="disk full", last_exit="exit 1", last_lines=[])
        store.dispatch(T.TASK_ALARM, "api", alarm="crash_loop", active=True, detail="x")
        store.dispatch(T.TASK_GATE, "build", observer="src", prompt="Deploy [now]?", waiting=True)
        await until(pilot, lambda: len(notices(app)) >= 3)
        joined = "\n".join(notices(app))
        assert "failed: disk full" in joined
        assert "alarm: crash loop" in joined
        assert "gate waiting: Deploy [now]?" in joined
        assert app.query_one(TaskList) is table
        row = table.row_text(store.state.tasks["db"], "", 100).plain
        assert "failed" in row

    run(test, app)


def test_log_pane_search_next_previous_filter_and_clear() -> None:
    app, _ = make_app(load_scene("main"))

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        await select(pilot, app, "api")
        log = app.log_pane
        await pilot.press("slash")
        await until(pilot, lambda: app.search_bar.has_focus)
        for ch in "INFO|WARN":
            await pilot.press(ch)
        await pilot.press("enter")
        await until(pilot, lambda: log.pattern is not None)
        assert len(log.matches) == 3
        first = log.current_match
        await pilot.press("n")
        assert log.current_match != first
        await pilot.press("N")
        assert log.current_match == first
        await pilot.press("f")
        assert log.filtering
        assert log.line_count == 3
        assert all(("INFO" in t) or ("WARN" in t) for t in log.visible_text())
        await pilot.press("f")
        assert not log.filtering
        await pilot.press("escape")
        assert log.pattern is None
        await pilot.press("c")
        assert log.line_count == 0

    run(test, app)


def test_bad_regex_is_reported_not_raised() -> None:
    app, _ = make_app(load_scene("main"))

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        await select(pilot, app, "api")
        app.apply_search("(unclosed")
        await until(pilot, lambda: any("bad regular expression" in m for m in notices(app)))

    run(test, app)


def test_stream_toggle_shows_stdout_then_stderr_only() -> None:
    app, _ = make_app(load_scene("main"))

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        await select(pilot, app, "api")
        log = app.log_pane
        assert log.view == "both"
        assert any("ERROR" in t for t in log.visible_text())
        await pilot.press("e")
        assert log.view == "stdout"
        assert not any("ERROR" in t or "WARN" in t for t in log.visible_text())
        await pilot.press("e")
        assert log.view == "stderr"
        assert log.visible_text() == [
            "ERROR upstream timeout (title hidden)",
            "WARN slow query \ufffd\ufffd bytes",
        ]
        await pilot.press("e")
        assert log.view == "both"

    run(test, app)


def test_jump_to_last_restart_scrolls_to_the_newest_marker_and_pauses_follow() -> None:
    scene = load_scene("main")
    for i in range(200):
        scene.output.append("api", "stdout", f"after restart {i}\n".encode(), 2)
    app, _ = make_app(scene)

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        await select(pilot, app, "api")
        log = app.log_pane
        assert log.follow
        await pilot.press("l")
        assert not log.follow
        top = log.row_to_index(log.scroll_offset.y)
        lines = scene.output.read("api", "both", top or 0, 1)
        assert lines[0].stream == "marker" and b"run 2" in lines[0].data

    run(test, app)


def test_follow_pauses_on_scroll_up_counts_new_lines_and_resumes_on_G() -> None:
    scene = load_scene("main")
    for i in range(100):
        scene.output.append("api", "stdout", f"line {i}\n".encode(), 2)
    app, _ = make_app(scene)

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        await select(pilot, app, "api")
        log = app.log_pane
        log.focus()
        await pilot.press("pageup")
        await until(pilot, lambda: not log.follow)
        for i in range(7):
            scene.output.append("api", "stdout", f"new {i}\n".encode(), 2)
        await until(pilot, lambda: log.unseen == 7)
        assert "7 new lines" in str(log.border_subtitle)
        await pilot.press("G")
        assert log.follow and log.unseen == 0
        await until(pilot, lambda: "new 6" in log.visible_text()[-1])

    run(test, app)


def test_log_pane_renders_only_visible_lines_of_a_huge_ring() -> None:
    scene = load_scene("main", memory_lines=100_000)
    chunk = b"".join(b"\x1b[32mline %d\x1b[0m\n" % i for i in range(100_000))
    scene.output.append("db", "stdout", chunk, 1)
    app, _ = make_app(scene)

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        await select(pilot, app, "db")
        log = app.log_pane
        await until(pilot, lambda: log.renders > 0)
        await pilot.pause()
        assert log.line_count > 100_000 - 1
        assert log.renders < 200, log.renders
        assert log.visible_text()[-1] == "line 99999"

    run(test, app)


def test_detail_view_masks_secrets_and_shows_exits_and_timeline() -> None:
    app, _ = make_app(load_scene("main"))

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        await select(pilot, app, "api")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        from devster_tui.tui.screens.detail import detail_renderable
        from devster_tui.tui.themes import status_styles

        task = app.bridge.state.tasks["api"]
        text = _table_text(
            detail_renderable(task, app.bridge.state, app.store.events_since(0), status_styles({}))
        )
        assert "s3cr3t-value" not in text and "hunter2" not in text
        assert MASK in text
        assert "LOG_LEVEL" in text and "debug" in text
        assert "exit 1" in text
        assert "task.spawned" in text and "task.health" in text
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DetailScreen))

    run(test, app)


def test_graph_of_fifty_tasks_lists_every_node_and_opens_detail() -> None:
    app, _ = make_app(load_scene("big"))

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, GraphScreen))
        view = app.screen.query_one(GraphView)
        names = [n.name for n in view.nodes if not n.observer]
        assert sorted(names) == [f"t{i:02d}" for i in range(50)]
        kinds = {e.kind for n in view.nodes for e in n.edges}
        assert kinds == {"depends", "trigger", "pipe"}
        levels = {n.name: n.level for n in view.nodes}
        for node in view.nodes:
            for edge in node.edges:
                assert levels[edge.source] < node.level
        start = view.cursor
        assert view.nodes[start].name == app.tasks.selected
        for _ in range(40):
            await pilot.press("down")
        assert view.cursor == min(start + 40, len(view.nodes) - 1)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))

    run(test, app)


def test_multipane_shows_each_pinned_task_in_its_own_pane() -> None:
    app, _ = make_app(load_scene("main"))

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        for name in ("api", "db", "build"):
            await select(pilot, app, name)
            await pilot.press("space")
        assert app.pinned == ["api", "db", "build"]
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MultiPaneScreen))
        panes = list(app.screen.query(LogView))
        assert [p.task_name for p in panes] == ["api", "db", "build"]
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, MultiPaneScreen))

    run(test, app)


def test_tree_and_flat_orders() -> None:
    app, _ = make_app(load_scene("main"))

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        table = app.tasks
        assert table.names == [
            "build",
            "api",
            "errors",
            "integration",
            "db",
            "prod-logs",
            "shell",
        ]
        await pilot.press("v")
        assert table.names == list(app.bridge.state.tasks)

    run(test, app)


def test_mouse_click_selects_a_task_row() -> None:
    app, _ = make_app(load_scene("main"))

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        index = app.tasks.names.index("db")
        await pilot.click(TaskList, offset=(3, index))
        await until(pilot, lambda: app.tasks.selected == "db")
        await until(pilot, lambda: app.log_pane.task_name == "db")

    run(test, app)


def test_resize_storm_leaves_a_working_cockpit() -> None:
    app, ctl = make_app(load_scene("main"))

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        for i in range(60):
            await pilot.resize_terminal(40 + (i * 37) % 160, 10 + (i * 11) % 50)
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await select(pilot, app, "db")
        await pilot.press("r")
        await until(pilot, lambda: ctl.commands)
        assert app.tasks.size.width == 80

    run(test, app)


def test_broken_theme_file_is_reported_and_skipped(tmp_path: Path) -> None:
    from devster_tui.tui.themes import builtin_theme_dir

    (tmp_path / "broken.toml").write_text("name = 'x'\n[colors\nprimary=1", "utf-8")
    (tmp_path / "mine.toml").write_text(
        'name = "mine"\n[colors]\nprimary = "#ff00ff"\n[status]\nfailed = "#00ffff"\n', "utf-8"
    )
    app, _ = make_app(load_scene("main"), theme_dirs=[builtin_theme_dir(), tmp_path], theme="mine")

    async def test(pilot: Pilot[int], app: CockpitApp) -> None:
        assert app.theme == "mine"
        await until(pilot, lambda: any("broken.toml" in m for m in notices(app)))
        assert [f.path.name for f in app.theme_failures] == ["broken.toml"]
        assert app.theme_variables["status-failed"].lower() == "#00ffff"

    run(test, app)


def test_a_pump_tick_during_shutdown_does_not_crash_the_app() -> None:
    """Pins: the 25 Hz pump firing after the last screen was popped (ScreenStackError)."""
    app, _ = make_app(load_scene("main"))

    async def main() -> None:
        async with app.run_test(size=SIZE):
            pass
        assert not app.screen_stack
        app._pump()  # what a late timer tick does

    asyncio.run(main())
