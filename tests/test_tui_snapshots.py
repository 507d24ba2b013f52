"""Snapshot tests of the cockpit (pytest-textual-snapshot), fed from recorded event logs.

Every scene comes from tests/data/eventlogs with a frozen clock and only the built-in
themes, so the pictures are deterministic.  Update after an intended change with
``pytest tests/test_tui_snapshots.py --snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import pytest
from textual.pilot import Pilot

from devster_tui.tui.app import CockpitApp
from devster_tui.tui.themes import builtin_theme_dir
from tests.test_tui_scenes import RecordingController, load_scene

SnapCompare = Callable[..., bool]


def cockpit(scene: str, theme: str | None = None) -> CockpitApp:
    loaded = load_scene(scene)
    return CockpitApp(
        loaded.store,
        loaded.output,
        RecordingController(),
        clock=loaded.clock,
        theme=theme,
        theme_dirs=[builtin_theme_dir()],
    )


def selecting(name: str, *keys: str) -> Callable[[Pilot[int]], Awaitable[None]]:
    async def run_before(pilot: Pilot[int]) -> None:
        app = pilot.app
        assert isinstance(app, CockpitApp)
        app.tasks.select(name)
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
        await pilot.pause()

    return run_before


def check(
    snap_compare: SnapCompare,
    app: CockpitApp,
    size: tuple[int, int],
    run_before: Callable[[Pilot[int]], Awaitable[None]] | None = None,
    press: Iterable[str] = (),
) -> None:
    assert snap_compare(app, terminal_size=size, run_before=run_before, press=list(press))


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
def test_main_screen_snapshot(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    check(snap_compare, cockpit("main"), size, selecting("api"))


def test_main_screen_light_theme_snapshot(snap_compare: SnapCompare) -> None:
    check(snap_compare, cockpit("main", theme="devster-light"), (100, 30), selecting("api"))


def test_failed_task_snapshot(snap_compare: SnapCompare) -> None:
    check(snap_compare, cockpit("failed"), (100, 30), selecting("web"))


def test_gate_waiting_snapshot(snap_compare: SnapCompare) -> None:
    check(snap_compare, cockpit("gate"), (80, 24), selecting("integration"))


def test_graph_snapshot(snap_compare: SnapCompare) -> None:
    check(snap_compare, cockpit("main"), (100, 30), selecting("api", "g"))


def test_graph_of_fifty_tasks_snapshot(snap_compare: SnapCompare) -> None:
    check(snap_compare, cockpit("big"), (120, 40), selecting("t20", "g"))


def test_detail_snapshot(snap_compare: SnapCompare) -> None:
    check(snap_compare, cockpit("main"), (100, 50), selecting("api", "enter"))


def test_help_snapshot(snap_compare: SnapCompare) -> None:
    check(snap_compare, cockpit("main"), (100, 40), selecting("api", "question_mark"))
