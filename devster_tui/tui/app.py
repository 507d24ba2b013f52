"""The cockpit application: task table, log pane, status bar, actions, views and themes.

Why: this is the one place where the state store, the output store and the controller
meet Textual.  The app owns a single ~25 Hz pump (see :mod:`devster_tui.tui.bridge`) that
compares ``store.state`` by identity and asks the log panes to catch up with the output
store; user actions become :class:`~devster_tui.state.commands.Command` objects sent to the
controller in workers, so a slow engine never blocks the screen.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.driver import Driver
from textual.screen import Screen
from textual.widgets import Input, Static

from devster_tui.state.commands import OBSERVE_GUARDED, Command, CommandResult, Controller
from devster_tui.state.model import EngineState, TaskState
from devster_tui.tui.bridge import PUMP_HZ, Bridge, Clock, OutputView, StoreView
from devster_tui.tui.groups import GroupedOutput
from devster_tui.tui.keymap import KEYMAP, bindings
from devster_tui.tui.lagprobe import probe_from_env
from devster_tui.tui.themes import (
    DEFAULT_THEME,
    ThemeFailure,
    default_theme_dirs,
    load_themes,
)
from devster_tui.tui.watchdog import StallWatchdog
from devster_tui.tui.widgets.logview import LogView
from devster_tui.tui.widgets.statusbar import StatusBar
from devster_tui.tui.widgets.tasklist import TaskList

MAX_PANES = 6
"""Most tasks shown side by side in the multi-pane view."""


class TitleBar(Static):
    """Project name and engine state (no clock: snapshots stay deterministic)."""


class TaskHeader(Static):
    """Column titles of the task table."""


class CockpitApp(App[int]):
    """The devster cockpit.

    Args:
        store: The state store (``store.state``, ``store.events_since``).
        output: The output store (``read``, ``end``, ``first``).
        controller: Where commands go (the engine, or an API client).
        title: Window title.
        theme: Theme name (default: devster-dark).
        read_only: Refuse every action (replays, web viewers).
        clock: Monotonic clock for uptimes (default: the store's clock, else
            ``time.monotonic``); snapshot tests pass a frozen one.
        theme_dirs: Folders to load themes from (default: ``themes/`` and the user folder).
        freeze_heap: After the first frame, move every object then alive out of the garbage
            collector's scans (``gc.freeze``); for the ``devster up`` process only, see
            :func:`freeze_heap`.
    """

    CSS_PATH = "styles/cockpit.tcss"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = list(bindings())

    def __init__(
        self,
        store: StoreView,
        output: OutputView,
        controller: Controller,
        *,
        title: str = "devster",
        theme: str | None = None,
        read_only: bool = False,
        clock: Clock | None = None,
        theme_dirs: Sequence[Path] | None = None,
        freeze_heap: bool = False,
    ) -> None:
        super().__init__()
        self.store = store
        """The state store."""
        self.output = output
        """The output store."""
        self.controller = controller
        """Where commands go."""
        self.read_only = read_only
        """Actions are refused."""
        self.title = title
        self.bridge = Bridge(store, output)
        """The pump's identity comparator."""
        self.clock: Clock = clock or _store_clock(store)
        """Monotonic clock for uptimes."""
        self.pinned: list[str] = []
        """Tasks pinned for the multi-pane view, in pin order."""
        self.theme_failures: list[ThemeFailure] = []
        """Theme files that could not be loaded."""
        self.notices_shown = 0
        """Toasts raised from state changes (for tests)."""
        loaded, failed = load_themes(default_theme_dirs() if theme_dirs is None else theme_dirs)
        for item in loaded:
            self.register_theme(item)
        self.theme_failures = failed
        self._wanted_theme = theme
        names = {t.name for t in loaded}
        if theme is not None and theme in self.available_themes:
            self.theme = theme
        elif DEFAULT_THEME in names:
            self.theme = DEFAULT_THEME
        self.title_bar = TitleBar("", id="title")
        """Project and engine phase."""
        self.task_header = TaskHeader("", id="task-header")
        """Column titles."""
        self.tasks = TaskList(self.clock, id="tasks")
        """The task table."""
        self.log_output = GroupedOutput(output, lambda: self.tasks.groups)
        """What the log panes read: the output store, plus fan-out groups merged by host."""
        self.log_pane = LogView(self.log_output, id="log")
        """The main log pane."""
        self.search_bar = Input(placeholder="regex: Enter searches, Esc closes", id="search")
        """The main screen's search bar."""
        self.search_bar.cursor_blink = False
        self.status_bar = StatusBar(id="status")
        """Counts and key hints."""
        self._search_target: LogView | None = None
        self._freeze_heap = freeze_heap
        self.on_stop_requested: Callable[[], None] | None = None
        """Called when the user quits (``run_cockpit`` arms its stall watchdog here)."""
        self.on_terminal_lost: Callable[[], None] | None = None
        """Called when the terminal is gone (default: leave the cockpit, exit code 0)."""

    # ------------------------------------------------------------------ terminal

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver, made to survive its terminal closing (see
        :mod:`devster_tui.tui.terminal`); a driver chosen by the environment is kept."""
        from devster_tui.tui.terminal import driver_for

        return driver_for(super().get_driver_class())

    def terminal_lost(self) -> None:
        """The terminal went away (the driver saw EIO): as if it had sent SIGHUP."""
        if self.on_terminal_lost is not None:
            self.on_terminal_lost()
        else:
            self.exit(0)

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        """Title, table header, task table, log pane, search bar, status bar."""
        yield self.title_bar
        yield self.task_header
        yield self.tasks
        yield self.log_pane
        yield self.search_bar
        yield self.status_bar

    def on_mount(self) -> None:
        """Start the pump, show the first state, report theme problems."""
        self._pump()
        self.set_interval(1 / PUMP_HZ, self._pump, name="bridge-pump")
        self.set_interval(1.0, self._tick, name="uptime-tick")
        self.tasks.focus()
        if self._freeze_heap:
            self.call_after_refresh(freeze_heap)
        for failure in self.theme_failures:
            self.notify(
                f"{failure.path.name}: {failure.reason}",
                title="theme skipped",
                severity="warning",
                timeout=10,
                markup=False,
            )
        if self._wanted_theme is not None and self._wanted_theme not in self.available_themes:
            self.notify(f"unknown theme {self._wanted_theme!r}", severity="warning", markup=False)
        self.theme_changed_signal.subscribe(self, lambda _theme: self._restyle())
        self._update_header()

    def _restyle(self) -> None:
        self.status_bar.update_state(self.bridge.state)
        for widget in self.query(TaskList):
            widget.refresh()
        for screen in self.screen_stack:
            for log in screen.query(LogView):
                log.refresh()

    # ------------------------------------------------------------------ the pump

    def _pump(self) -> None:
        """One tick of the bridge: state by identity, then the visible log panes."""
        if not self.screen_stack:
            # The timer can fire once more while the app is shutting down, after the last
            # screen is gone; there is nothing left to update.
            return
        change = self.bridge.poll()
        if change is not None:
            tasks = self.tasks
            had = tasks.selected
            tasks.update_state(change.state, change.changed, change.structure)
            self.status_bar.update_state(change.state)
            self._update_title(change.state)
            if change.structure:
                self._update_header()
            if had is None and tasks.selected is not None:
                self._show_selected()
            elif tasks.selected in change.changed or tasks.selected in tasks.groups:
                self._update_log_status()
            for notice in change.notices:
                self.notices_shown += 1
                self.notify(
                    notice.message,
                    title=notice.title,
                    severity=notice.severity,
                    timeout=8 if notice.severity == "error" else 5,
                    markup=False,
                )
            refresh = getattr(self.screen, "state_changed", None)
            if callable(refresh):
                refresh(change)
        for log in self.screen.query(LogView):
            log.poll()

    def _tick(self) -> None:
        self.tasks.tick()

    def _update_title(self, state: EngineState) -> None:
        name = state.project or self.title
        if state.stopping:
            phase = "stopping"
        elif state.running:
            phase = "running"
        elif state.exit_code is not None:
            phase = f"stopped (exit {state.exit_code})"
        else:
            phase = "not running"
        extra = " · read-only" if self.read_only else ""
        self.title_bar.update(
            f" devster · {name} · {len(state.tasks)} tasks · engine {phase}{extra}"
        )

    def _update_header(self) -> None:
        tasks = self.tasks
        header = self.task_header
        header.update(tasks.header_text(max(1, tasks.size.width or self.size.width)))

    def on_resize(self) -> None:
        """Re-fit the table header."""
        self.call_after_refresh(self._update_header)

    # ------------------------------------------------------------------ selection

    @property
    def selected_task(self) -> TaskState | None:
        """The task under the cursor."""
        name = self.tasks.selected
        if name is None:
            return None
        return self.bridge.state.tasks.get(name)

    @on(TaskList.Selected)
    def _on_selected(self, event: TaskList.Selected) -> None:
        self._show_selected()

    @on(TaskList.Activated)
    def _on_activated(self, event: TaskList.Activated) -> None:
        self.action_detail()

    def _show_selected(self) -> None:
        log = self.log_pane
        name = self.tasks.selected
        if name != log.task_name:
            log.show(name)
        self._update_log_status()

    def _update_log_status(self) -> None:
        task = self.selected_task
        if task is None and self.tasks.selected is not None:
            task = self.tasks.row_state(self.tasks.selected)  # a fan-out group's summary
        if task is None:
            return
        text = task.status.value
        if task.pid is not None:
            text += f" pid {task.pid}"
        if task.reason:
            text += f" · {task.reason}"
        self.log_pane.set_status_text(text)

    # ------------------------------------------------------------------ commands

    def send(self, action: str, *, task: TaskState | None = None, **options: Any) -> bool:
        """Send ``action`` for ``task`` (default: the selected one), asking for confirmation
        first on ``mode: observe`` tasks.

        Returns:
            Whether a command was sent or a confirmation is pending.
        """
        if self.read_only:
            self.notify("read-only cockpit: actions are disabled", severity="warning", markup=False)
            return False
        if action != "shutdown":
            task = task or self.selected_task
            if task is None:
                self.notify("no task selected", severity="warning", markup=False)
                return False
        names = (task.name,) if task is not None else ()
        command = Command(action, names, by="tui", **options)  # type: ignore[arg-type]
        if task is not None and task.mode == "observe" and action in OBSERVE_GUARDED:
            self._confirm(command)
            return True
        self.dispatch_command(command)
        return True

    def _confirm(self, command: Command) -> None:
        from devster_tui.tui.screens.dialogs import ConfirmScreen

        what = f"{command.action.replace('_', ' ')} {', '.join(command.tasks)}"
        question = (
            f"{', '.join(command.tasks)} is a read-only (mode: observe) task.\nReally {what}?"
        )

        def answered(ok: bool | None) -> None:
            if ok:
                self.dispatch_command(replace(command, confirmed=True))

        self.push_screen(ConfirmScreen(question), answered)

    def dispatch_command(self, command: Command) -> None:
        """Run ``command`` on the controller in a worker; failures become notifications."""
        self.run_worker(
            self._execute(command), group="commands", exit_on_error=False, name=command.action
        )

    async def _execute(self, command: Command) -> CommandResult | None:
        try:
            result = await self.controller.execute(command)
        except Exception as exc:  # the engine's failure must not kill the cockpit
            self.notify(
                f"{command.action} failed: {exc}", severity="error", timeout=8, markup=False
            )
            return None
        if result.needs_confirmation and not command.confirmed:
            self._confirm(command)
        elif not result.ok:
            target = ", ".join(command.tasks) or "engine"
            self.notify(
                result.message or f"{command.action} refused",
                title=f"{command.action} {target}",
                severity="error",
                timeout=8,
                markup=False,
            )
        return result

    def action_restart(self) -> None:
        """Restart the selected task."""
        self.send("restart")

    def action_start(self) -> None:
        """Start the selected task."""
        self.send("start")

    def action_stop(self) -> None:
        """Stop the selected task."""
        self.send("stop")

    def action_trigger(self) -> None:
        """Trigger the selected task now."""
        self.send("trigger")

    def action_approve(self, always: bool = False) -> None:
        """Approve the selected task's gate (once, or for the session)."""
        self.send("approve", always=always)

    def action_toggle_autorestart(self) -> None:
        """Toggle auto-restart of the selected task."""
        task = self.selected_task
        if task is not None:
            self.send("set_autorestart", task=task, enabled=not task.autorestart)

    def action_toggle_watch(self) -> None:
        """Toggle file watching of the selected task."""
        task = self.selected_task
        if task is not None:
            self.send("set_watch", task=task, enabled=not task.watching)

    def action_stdin(self) -> None:
        """Open the stdin prompt for a console-stdin task."""
        task = self.selected_task
        if task is None:
            return
        if self.read_only:
            self.send("send_stdin", task=task)
            return
        piped = [ref for ref in task.stdin_from if ref != "console"]
        if piped:
            self.notify(
                f"{task.name} reads stdin from {', '.join(piped)}, not the console",
                severity="warning",
                markup=False,
            )
            return
        from devster_tui.tui.screens.dialogs import StdinScreen

        self.push_screen(StdinScreen(task.name))

    def send_stdin(self, task_name: str, text: str) -> None:
        """Send ``text`` plus a newline to ``task_name``'s stdin."""
        task = self.bridge.state.tasks.get(task_name)
        if task is not None:
            self.send("send_stdin", task=task, data=(text + "\n").encode())

    # ------------------------------------------------------------------ views

    def action_detail(self, name: str | None = None) -> None:
        """Open the detail view of the selected task."""
        from devster_tui.tui.screens.detail import DetailScreen

        task_name = name or self.tasks.selected
        if task_name is not None:
            self.push_screen(DetailScreen(task_name))

    def action_graph(self) -> None:
        """Open the dependency graph."""
        from devster_tui.tui.screens.graph import GraphScreen

        self.push_screen(GraphScreen(self.tasks.selected))

    def action_pin(self) -> None:
        """Pin or unpin the selected task for the multi-pane view."""
        name = self.tasks.selected
        if name is None:
            return
        if name in self.pinned:
            self.pinned.remove(name)
        else:
            self.pinned.append(name)
            if len(self.pinned) > MAX_PANES:
                self.pinned.pop(0)
        self.tasks.set_pinned(frozenset(self.pinned))

    def action_multipane(self) -> None:
        """Show the pinned tasks side by side (the selected one too, if few are pinned)."""
        from devster_tui.tui.screens.multipane import MultiPaneScreen

        names = list(self.pinned)
        selected = self.tasks.selected
        if len(names) < 2 and selected is not None and selected not in names:
            names.append(selected)
        if len(names) < 2:
            self.notify("pin two or more tasks with space first", severity="warning", markup=False)
            return
        self.push_screen(MultiPaneScreen(names, self.log_output))

    def action_toggle_tree(self) -> None:
        """Switch the task list between tree and flat order."""
        tasks = self.tasks
        tasks.toggle_tree()
        self._update_header()

    def action_help(self) -> None:
        """Show every binding."""
        from devster_tui.tui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    # ------------------------------------------------------------------ log pane

    @property
    def log_view(self) -> LogView:
        """The log pane with focus on the current screen, else the main one."""
        focused = self.focused
        if isinstance(focused, LogView):
            return focused
        if isinstance(self._search_target, LogView) and self._search_target.screen is self.screen:
            if isinstance(focused, Input):
                return self._search_target
        views = list(self.screen.query(LogView))
        return views[0] if views else self.log_pane

    def _screen_search_bar(self) -> Input | None:
        bars = list(self.screen.query("#search").results(Input))
        return bars[0] if bars else None

    def action_search(self) -> None:
        """Open the search bar of the current screen for the focused log pane."""
        bar = self._screen_search_bar()
        if bar is None:
            return
        self._search_target = self.log_view
        bar.value = self._search_target.pattern.pattern if self._search_target.pattern else ""
        bar.display = True
        bar.focus()

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        self.apply_search(event.value)

    def apply_search(self, pattern: str) -> None:
        """Search the log pane for ``pattern`` (a regular expression)."""
        import re

        bar = self._screen_search_bar()
        log = self._search_target or self.log_view
        try:
            found = log.search(pattern or None)
        except re.error as exc:
            self.notify(f"bad regular expression: {exc}", severity="error", markup=False)
            return
        if bar is not None:
            bar.display = False
        log.focus()
        if pattern:
            if found:
                log.next_match(backwards=True)
            else:
                self.notify(
                    f"no line matches /{pattern}/", severity="warning", timeout=3, markup=False
                )

    def action_next_match(self) -> None:
        """Move to the next match."""
        if self.log_view.next_match() is None:
            self.notify("no matches (search with /)", severity="warning", timeout=3, markup=False)

    def action_previous_match(self) -> None:
        """Move to the previous match."""
        if self.log_view.next_match(backwards=True) is None:
            self.notify("no matches (search with /)", severity="warning", timeout=3, markup=False)

    def action_filter(self) -> None:
        """Toggle showing only matching lines."""
        log = self.log_view
        if log.pattern is None:
            self.notify(
                "search first (/), then f filters", severity="warning", timeout=3, markup=False
            )
            return
        log.toggle_filter()

    def action_cycle_stream(self) -> None:
        """Switch the log pane between both, stdout and stderr."""
        self.log_view.cycle_view()

    def action_clear(self) -> None:
        """Clear the log pane."""
        self.log_view.clear()

    def action_last_restart(self) -> None:
        """Scroll to the last restart marker."""
        if self.log_view.jump_last_restart() is None:
            self.notify(
                "no restart in the lines in memory", severity="warning", timeout=3, markup=False
            )

    def action_follow(self) -> None:
        """Follow the newest output again."""
        self.log_view.follow_end()

    def action_escape(self) -> None:
        """Close the search bar, or clear the search highlight."""
        bar = self._screen_search_bar()
        if bar is not None and bar.display:
            bar.display = False
            target = self._search_target
            if target is not None and target.screen is self.screen:
                target.focus()
            return
        log = self.log_view
        if log.pattern is not None:
            log.search(None)

    # ------------------------------------------------------------------ palette

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Textual's commands plus every cockpit action and every theme."""
        yield from super().get_system_commands(screen)
        task = self.selected_task
        target = f" ({task.name})" if task is not None else ""
        for key in KEYMAP:
            if key.action in ("command_palette", "help", "quit", "escape", "focus_next"):
                continue
            action = key.action
            yield SystemCommand(
                f"{key.description}{target}",
                f"key: {key.display()}",
                lambda action=action: self.run_action(action),
            )
        yield SystemCommand("Help: every key binding", "key: ?", self.action_help)
        yield SystemCommand(
            "Quit devster", "stops the tasks like Ctrl-C headless", self.action_quit
        )
        for name in sorted(self.available_themes):
            yield SystemCommand(
                f"Theme: {name}",
                "switch the colour theme",
                lambda name=name: setattr(self, "theme", name),
            )

    async def action_quit(self) -> None:
        """Leave the cockpit (the caller stops the tasks)."""
        if self.on_stop_requested is not None:
            self.on_stop_requested()
        self.exit(0)


def freeze_heap() -> None:
    """Collect once, then exempt every object alive now from later collections.

    Why: after start-up the process holds ~90k long-lived container objects (modules,
    Textual, pydantic, the output rings with 10,000 lines each).  Under an output flood the
    log pane's strip cache keeps promoting objects, so full collections ran every ~1 s and
    each scanned all of them: 60-140 ms with the loop stopped, the whole loop-lag p99.
    Frozen, a full collection scans only what was created since (~20 ms).
    """
    gc.collect()
    gc.freeze()


def _store_clock(store: object) -> Clock:
    clock = getattr(store, "clock", None)
    monotonic = getattr(clock, "monotonic", None)
    if callable(monotonic):
        return monotonic  # type: ignore[no-any-return]
    return time.monotonic


async def run_cockpit_async(
    engine: Any, selection: Sequence[str] = (), *, with_dependencies: bool = True
) -> int:
    """Run the cockpit over ``engine`` inside the running loop, then stop the tasks.

    Starts the engine (``engine.start(selection)``) unless it already runs, runs the app,
    and on quit, SIGTERM, SIGHUP, a terminal that went away or an exception sends
    ``Command("shutdown")`` like the headless Ctrl-C and waits for the engine to finish.
    Textual restores the terminal (alternate screen, mouse reporting) before the shutdown
    starts.  During the shutdown the engine's own signal handlers are in place (a further
    SIGINT/SIGTERM kills at once, a further SIGHUP changes nothing).

    Returns:
        The exit code: after a signal (a lost terminal counts as SIGHUP) the engine's, which
        maps the signal like headless (129, 143); otherwise the app's (0 after ``q``).
    """
    app = CockpitApp(engine.store, engine.output, engine, title="devster", freeze_heap=True)
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    watchdog = StallWatchdog(loop)
    app.on_stop_requested = lambda: watchdog.arm(1)
    stopped_by: list[int] = []

    def on_signal(signum: int) -> None:
        # A signal that arrives once the engine stops anyway (``devster down`` closes the
        # cockpit with a SIGTERM) did not stop it.
        if not stopped_by and not getattr(engine, "stopping", False):
            stopped_by.append(signum)
        watchdog.arm(128 + signum)
        app.exit(0)

    app.on_terminal_lost = lambda: on_signal(signal.SIGHUP)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        try:
            loop.add_signal_handler(signum, on_signal, int(signum))
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    probe = probe_from_env()
    if probe is not None:
        probe.start(loop)
    code = 1
    try:
        if not engine.store.state.running and hasattr(engine, "start"):
            await engine.start(selection, with_dependencies=with_dependencies)
        result = await app.run_async()
        code = 0 if result is None else int(result)
    finally:
        if probe is not None:
            await probe.aclose()
        await _stop_engine(engine, loop, installed, stopped_by[0] if stopped_by else None)
        watchdog.disarm()
    if stopped_by:
        stopped = getattr(engine.store.state, "exit_code", None)
        code = stopped if isinstance(stopped, int) else 128 + stopped_by[0]
    elif app.return_code not in (None, 0):
        code = app.return_code
    return code


async def _stop_engine(
    engine: Any,
    loop: asyncio.AbstractEventLoop,
    cockpit_signals: Sequence[signal.Signals],
    signum: int | None,
) -> None:
    """Stop ``engine`` after the cockpit closed (``signum``: the signal that closed it)."""
    from devster_tui.tui.terminal import tell

    install = getattr(engine, "install_signal_handlers", None)
    # The engine's handlers replace the cockpit's in place: no moment without one, when a
    # second SIGHUP (a closing terminal window can send two) would kill devster outright.
    remove: Callable[[], None] | None = None
    if callable(install):
        try:
            remove = install()
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            remove = None
    if remove is None:
        for each in cockpit_signals:
            loop.remove_signal_handler(each)
    if signum is not None and getattr(engine, "interrupted", False) is None:
        engine.interrupted = signum  # the engine maps it to the exit code (129, 143)
    try:
        tell("devster: stopping tasks…\n")
        await engine.execute(Command("shutdown", by="tui"))
        wait = getattr(engine, "wait_finished", None)
        if callable(wait):
            await wait()
    finally:
        if remove is not None:
            remove()


def run_cockpit(engine: Any, selection: Sequence[str] = ()) -> int:
    """Run the cockpit over ``engine`` on a new event loop; returns the exit code."""
    return asyncio.run(run_cockpit_async(engine, selection))
