"""The bridge pump (identity comparison, notices, tree order) and theme loading."""

from __future__ import annotations

import json
from pathlib import Path

from devster_tui.state.clock import FakeClock
from devster_tui.state.events import T
from devster_tui.state.model import Status
from devster_tui.state.output import OutputStore
from devster_tui.state.selectors import format_duration
from devster_tui.state.store import Store
from devster_tui.tui.bridge import Bridge, counts, tree_order
from devster_tui.tui.themes import (
    builtin_theme_dir,
    load_themes,
    status_colors,
    user_theme_dir,
)


def make_store() -> Store:
    store = Store(clock=FakeClock())
    store.dispatch(T.ENGINE_STARTED, project="p", config_file="f", pid=1, tasks=[], version="0")
    store.dispatch_raw(T.TASK_DEFINED, "a", kind="service")
    store.dispatch_raw(T.TASK_DEFINED, "b", kind="service", depends_on={"a": "started"})
    return store


def test_poll_returns_nothing_while_the_state_object_is_unchanged() -> None:
    store = make_store()
    bridge = Bridge(store, OutputStore(None))
    first = bridge.poll()
    assert first is not None and first.structure
    assert bridge.poll() is None


def test_poll_reports_only_the_tasks_whose_state_changed() -> None:
    store = make_store()
    bridge = Bridge(store, OutputStore(None))
    bridge.poll()
    store.dispatch(T.TASK_STARTING, "b", run=1, reason="start")
    change = bridge.poll()
    assert change is not None
    assert change.changed == {"b"} and not change.structure


def test_output_lines_do_not_change_the_state_seen_by_the_pump() -> None:
    store = make_store()
    output = OutputStore(None)
    bridge = Bridge(store, output)
    bridge.poll()
    output.append("a", "stdout", b"x\n" * 10000, 1)
    assert bridge.poll() is None
    assert output.end("a", "stdout") == 10000


def test_notices_for_failure_alarm_and_gate_are_raised_once() -> None:
    store = make_store()
    bridge = Bridge(store, OutputStore(None))
    bridge.poll()
    store.dispatch(T.TASK_FAILED, "a", reason="boom", last_exit="exit 1", last_lines=[])
    store.dispatch(T.TASK_ALARM, "b", alarm="stuck_starting", active=True, detail="")
    store.dispatch(T.TASK_GATE, "b", observer="o", prompt="Go?", waiting=True)
    change = bridge.poll()
    assert change is not None
    assert sorted((n.severity, n.message) for n in change.notices) == [
        ("error", "failed: boom"),
        ("information", "gate waiting: Go? (a approves)"),
        ("warning", "alarm: stuck starting"),
    ]
    store.dispatch(T.TASK_HEALTH, "b", healthy=True, probe="health", detail="", failures=0)
    again = bridge.poll()
    assert again is not None and again.notices == ()


def test_tree_order_places_each_task_once_below_its_deepest_dependency() -> None:
    store = make_store()
    store.dispatch_raw(T.TASK_DEFINED, "c", depends_on={"a": "started", "b": "healthy"})
    store.dispatch_raw(T.TASK_DEFINED, "d")
    order = tree_order(store.state.tasks)
    assert [(n, p) for n, _, p in order] == [("a", ""), ("b", "└─"), ("c", "  └─"), ("d", "")]


def test_counts_and_durations() -> None:
    store = make_store()
    assert counts(store.state) == {Status.DEFINED: 2}
    assert [format_duration(s) for s in (5, 65, 3700, 90000)] == ["5s", "1m05s", "1h01m", "1d01h"]


def test_builtin_themes_load_and_define_every_status_colour() -> None:
    loaded, failed = load_themes([builtin_theme_dir()])
    assert failed == []
    names = {t.name for t in loaded}
    assert {"devster-dark", "devster-light"} <= names
    for theme in loaded:
        assert {f"status-{s.value}" for s in Status} <= set(theme.variables)


def test_broken_theme_files_are_reported_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "a-ok.json").write_text(json.dumps({"colors": {"primary": "#123456"}}))
    (tmp_path / "b-syntax.toml").write_text("[colors\n")
    (tmp_path / "c-key.toml").write_text('[colors]\nprimary = "#fff"\nsparkle = "#fff"\n')
    (tmp_path / "d-colour.toml").write_text('[colors]\nprimary = "not a colour"\n')
    (tmp_path / "e-status.toml").write_text('[colors]\nprimary="#fff"\n[status]\nzombie="#f00"\n')
    (tmp_path / "f-binary.toml").write_bytes(b"\xff\xfe\x00")
    loaded, failed = load_themes([tmp_path, tmp_path / "missing"])
    assert [t.name for t in loaded] == ["a-ok"]
    assert [f.path.name for f in failed] == [
        "b-syntax.toml",
        "c-key.toml",
        "d-colour.toml",
        "e-status.toml",
        "f-binary.toml",
    ]
    assert "sparkle" in failed[1].reason and "zombie" in failed[3].reason


def test_status_colours_fall_back_to_base_colours_for_foreign_themes() -> None:
    colours = status_colors({"success": "#00ff00", "error": "#ff0000", "warning": "#ffff00"})
    assert colours[Status.RUNNING] == "#00FF00"
    assert colours[Status.FAILED] == "#FF0000"


def test_user_theme_folder_follows_xdg_config_home(tmp_path: Path) -> None:
    assert user_theme_dir({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "devster" / "themes"


def test_docs_list_every_key_binding() -> None:
    from devster_tui.tui.keymap import KEYMAP

    doc = (Path(__file__).parents[1] / "docs" / "tui.md").read_text("utf-8")
    for key in KEYMAP:
        assert f"`{key.display()}` | {key.description}" in doc, key.display()
