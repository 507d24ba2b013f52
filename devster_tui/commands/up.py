"""``devster up [TASK...]``: start the project and supervise it, in the TUI or headless.

Exit status (headless and TUI alike), from :class:`~devster_tui.errors.ExitCode`:
  0    every task ended fine (or was running fine when you stopped devster with ``q``)
  1    a task failed, was blocked, or ended with an unsuccessful exit
  2    the project file is missing or invalid, or a named task does not exist
  5    an engine already runs for this project ("already running (pid N)")
  129  SIGHUP (the terminal was closed); 130 Ctrl-C (SIGINT); 143 SIGTERM
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from devster_tui.commands.options import add_config_options, load_from_args
from devster_tui.errors import DevsterError, ExitCode, unknown_names

if TYPE_CHECKING:
    from devster_tui.api.paths import EngineLock
    from devster_tui.config.loader import LoadedProject
    from devster_tui.engine.policy import EngineMode
    from devster_tui.engine.supervisor import Engine
    from devster_tui.state.events import Event
    from devster_tui.state.model import EngineState


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``-f``, ``--profile``, ``--no-tui`` and the task names."""
    add_config_options(parser)
    parser.add_argument(
        "--no-tui",
        action="store_true",
        help="print 'task | line' output and status lines instead of opening the TUI "
        "(the default when stdout is not a terminal)",
    )
    parser.add_argument(
        "--exit-when-done",
        action="store_true",
        help="with --no-tui: end once no task runs, even if file, interval or log "
        "observers or manual gates could start one again",
    )
    parser.add_argument(
        "--exit-on-failure",
        action="store_true",
        help="with --no-tui: stop everything when a task fails and exit with its code",
    )
    parser.add_argument(
        "--no-deps",
        action="store_true",
        help="start the named tasks without their dependencies",
    )
    # The engine `up -d` starts in the background: it stays until `devster down`.
    parser.add_argument("--background-engine", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "tasks",
        nargs="*",
        metavar="TASK",
        help="start only these tasks and what they depend on (default: every autostart task)",
    )
    from devster_tui.commands.detach import add_detach_arguments
    from devster_tui.commands.hosting import add_api_arguments

    add_detach_arguments(parser)
    add_api_arguments(parser)


def load(args: argparse.Namespace) -> LoadedProject | None:
    """Find and load the project named by ``-f``/``--profile``; report errors on stderr.

    Returns:
        The loaded project, or None after printing why it could not be loaded.
    """
    return load_from_args(args)


def refuse_unknown_tasks(loaded: LoadedProject, names: Sequence[str]) -> None:
    """Refuse names that are not tasks of the project.

    Raises:
        DevsterError: ``no such task: wbe; did you mean 'web'?`` (exit 2).
    """
    tasks = loaded.project.tasks
    missing = [name for name in names if name not in tasks]
    if missing:
        raise DevsterError(unknown_names("no such task", missing, tasks, "tasks"), ExitCode.CONFIG)


class Failures:
    """The tasks that failed, in the order they failed, with the exit code each stands for.

    One record for ``up --exit-on-failure`` (stop at the first) and ``devster run`` (exit
    with the first failed job's own code, then a one-line summary).
    """

    def __init__(self, engine: Engine, names: Sequence[str] | None = None) -> None:
        """Watch ``engine``'s tasks (only ``names`` when given)."""
        from devster_tui.state.events import T

        self._names = None if names is None else frozenset(names)
        self._failing = frozenset({T.TASK_FAILED, T.TASK_SPAWN_FAILED, T.TASK_BLOCKED})
        self._exited = T.TASK_EXITED
        self.order: list[str] = []
        """Failed task names, first failure first."""
        self.codes: dict[str, int] = {}
        """Task -> the exit code it stands for (its own non-zero code, else 1)."""
        self.first = asyncio.Event()
        """Set at the first failure."""
        self.unsubscribe = engine.store.subscribe(self._on_event)

    def _on_event(self, event: Event, state: EngineState) -> None:
        name = event.task
        if name is None or name in self.codes:
            return
        if self._names is not None and name not in self._names:
            return
        failed = event.type in self._failing or (
            event.type == self._exited
            and event.data.get("next") == "exited"
            and not event.data.get("success")
        )
        if not failed:
            return
        task = state.tasks.get(name)
        last = task.last_exit if task is not None else None
        own = last.code if last is not None and task is not None and last.run == task.run else None
        self.codes[name] = own if own not in (None, 0) else 1
        self.order.append(name)
        self.first.set()

    def summary(self, engine: Engine) -> str:
        """``failed: unit (exit 3); e2e (blocked: dependency unit failed: exit 3)``."""
        from devster_tui.state.model import Status

        state = engine.store.state.tasks
        parts = []
        for name in self.order:
            task = state.get(name)
            why = task.reason if task is not None and task.reason else "failed"
            if task is not None and task.status is Status.BLOCKED:
                why = f"blocked: {why}"
            parts.append(f"{name} ({why})")
        return "failed: " + "; ".join(parts)


async def supervise_headless(
    engine: Engine,
    selection: Sequence[str],
    *,
    until: Sequence[str] | None = None,
    mode: EngineMode = "headless",
    exit_on_failure: bool = False,
    with_dependencies: bool = True,
) -> int:
    """Start ``selection``, print everything until the engine is done, and stop.

    Args:
        engine: A fresh engine.
        selection: Tasks to start (with their dependencies); empty for autostart tasks.
        until: Stop the engine once these tasks' lifecycles end (``devster run``), and
            exit with the first failed one's own code; None follows ``mode``.
        mode: When the engine ends on its own (docs/lifecycle.md, the lifetime table).
        exit_on_failure: Stop everything at the first failure; exit with its code.
        with_dependencies: False for ``up --no-deps``.

    Returns:
        The exit status.
    """
    from devster_tui.clients.headless import HeadlessPrinter

    out = sys.stdout.buffer
    printer = HeadlessPrinter(
        engine.store,
        engine.output,
        out,
        tasks=list(engine.tasks),
        color=out.isatty(),
        on_activity=engine.on_output_activity,
    )
    printing = asyncio.create_task(printer.run())
    remove_handlers = engine.install_signal_handlers()
    failures = Failures(engine, until)
    summary = None
    try:
        await engine.start(selection, with_dependencies=with_dependencies)
        done = asyncio.ensure_future(
            engine.wait_tasks(until) if until is not None else engine.wait_done(mode)
        )
        failed = asyncio.ensure_future(failures.first.wait())
        waits = {done, failed} if exit_on_failure else {done}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            done.cancel()
            failed.cancel()
        stopped_at_failure = exit_on_failure and failures.first.is_set()
        code = await engine.shutdown(reason="failure" if stopped_at_failure else "finished")
        if engine.interrupted is None and (until is not None or stopped_at_failure):
            code = failures.codes[failures.order[0]] if failures.order else 0
            if until is not None and not failures.order:
                code = engine.exit_code(until)
        if failures.order and until is not None:
            summary = f"devster run: {failures.summary(engine)}\n"
    finally:
        failures.unsubscribe()
        remove_handlers()
        await printer.aclose()
        printing.cancel()
        await asyncio.gather(printing, return_exceptions=True)
        await engine.close()
    if summary is not None:
        sys.stderr.write(summary)
    return code


def run(args: argparse.Namespace) -> int:
    """Run ``devster up``."""
    loaded = load(args)
    if loaded is None:
        return ExitCode.CONFIG
    refuse_unknown_tasks(loaded, args.tasks)
    from devster_tui.commands import hosting

    if args.detach:
        from devster_tui.commands.detach import detach
        from devster_tui.engine.secrets import prompt_errors

        refused = prompt_errors(loaded)
        if refused:
            sys.stderr.write("".join(f"{error}\n" for error in refused))
            return ExitCode.CONFIG
        return detach(args, loaded)
    lock = hosting.take_lock(loaded)
    try:
        tui = not args.no_tui and sys.stdout.isatty() and sys.stdin.isatty()
        resolved = with_secrets_or_report(loaded, ask_in_tui=tui)
        if resolved is None:
            return ExitCode.CONFIG
        return _run_engine(args, resolved, lock)
    finally:
        lock.release()


def with_secrets_or_report(loaded: LoadedProject, *, ask_in_tui: bool) -> LoadedProject | None:
    """Read the project's secrets once, before anything starts; report errors on stderr.

    Args:
        loaded: The validated project.
        ask_in_tui: Ask ``prompt`` secrets in a TUI prompt (otherwise a prompt is an error).

    Returns:
        The project with its secrets, or None after printing why they could not be read.
    """
    if not loaded.project.secrets:
        return loaded
    from devster_tui.config.errors import ConfigErrors
    from devster_tui.engine.secrets import Ask, with_secrets

    ask: Ask | None = None
    if ask_in_tui:
        try:
            from devster_tui.tui.screens.secret_prompt import ask_secrets
        except ImportError:
            pass
        else:
            ask = ask_secrets
    try:
        return with_secrets(loaded, ask=ask)
    except ConfigErrors as exc:
        sys.stderr.write("".join(f"{error}\n" for error in exc.errors))
        return None


def _run_engine(args: argparse.Namespace, loaded: LoadedProject, lock: EngineLock) -> int:
    from devster_tui.commands.hosting import hosted
    from devster_tui.engine.supervisor import Engine

    want_tui = not args.no_tui and sys.stdout.isatty() and sys.stdin.isatty()
    if want_tui:
        try:
            from devster_tui.tui.app import run_cockpit_async
        except ImportError:
            sys.stderr.write("devster: the TUI is not available; running headless\n")
        else:

            async def main_tui() -> int:
                engine = Engine(loaded)
                async with hosted(engine, lock, args, tui=True):
                    return int(
                        await run_cockpit_async(
                            engine, list(args.tasks), with_dependencies=not args.no_deps
                        )
                    )

            return asyncio.run(main_tui())

    async def main() -> int:
        engine = Engine(loaded)
        # Before the first await: SIGINT/SIGTERM in any phase (serving the API, reading
        # secrets, cleaning up leftovers) must stop the engine, never hang or kill it raw.
        remove_handlers = engine.install_signal_handlers()
        try:
            async with hosted(engine, lock, args):
                return await supervise_headless(
                    engine,
                    list(args.tasks),
                    mode=headless_mode(args),
                    exit_on_failure=args.exit_on_failure,
                    with_dependencies=not args.no_deps,
                )
        finally:
            remove_handlers()

    return asyncio.run(main())


def headless_mode(args: argparse.Namespace) -> EngineMode:
    """The lifetime of a headless engine: ``up -d``'s stays, ``--exit-when-done`` ends
    when nothing runs, plain ``--no-tui`` also waits for observers that can start tasks."""
    if args.background_engine:
        return "detached"
    return "exit_when_done" if args.exit_when_done else "headless"
