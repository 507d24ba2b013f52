"""``devster up [TASK...]``: start the project and supervise it, in the TUI or headless.

Exit status (headless and TUI alike):
  0    every task ended fine (or was running fine when you stopped devster with ``q``)
  1    a task failed, was blocked, or ended with an unsuccessful exit
  2    the project file is missing or invalid, or a named task does not exist
  3    an engine already runs for this project ("already running (pid N)")
  130  stopped by Ctrl-C (SIGINT); 143 stopped by SIGTERM
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from devster_tui.commands.options import add_config_options, load_from_args

if TYPE_CHECKING:
    from devster_tui.api.paths import EngineLock
    from devster_tui.config.loader import LoadedProject
    from devster_tui.engine.supervisor import Engine

EXIT_CONFIG = 2


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


def unknown_tasks(loaded: LoadedProject, names: Sequence[str]) -> list[str]:
    """The names in ``names`` that are not tasks of the project."""
    return [name for name in names if name not in loaded.project.tasks]


async def supervise_headless(
    engine: Engine,
    selection: Sequence[str],
    *,
    until: Sequence[str] | None = None,
) -> int:
    """Start ``selection``, print everything until the end, and stop.

    Args:
        engine: A fresh engine.
        selection: Tasks to start (with their dependencies); empty for autostart tasks.
        until: Stop the engine once these tasks' lifecycles end (``devster run``); None
            waits for every task (``devster up``).

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
    try:
        await engine.start(selection)
        if until is None:
            await engine.wait_finished()
            code = await engine.shutdown(reason="finished")
        else:
            await engine.wait_tasks(until)
            result = engine.exit_code(until)
            code = await engine.shutdown(reason="finished")
            if engine.interrupted is None:
                code = result
    finally:
        remove_handlers()
        await printer.aclose()
        printing.cancel()
        await asyncio.gather(printing, return_exceptions=True)
        await engine.close()
    return code


def run(args: argparse.Namespace) -> int:
    """Run ``devster up``."""
    loaded = load(args)
    if loaded is None:
        return EXIT_CONFIG
    missing = unknown_tasks(loaded, args.tasks)
    if missing:
        sys.stderr.write(f"devster: no such task: {', '.join(missing)}\n")
        return EXIT_CONFIG
    from devster_tui.commands import hosting

    if args.detach:
        from devster_tui.commands.detach import detach
        from devster_tui.engine.secrets import prompt_errors

        refused = prompt_errors(loaded)
        if refused:
            sys.stderr.write("".join(f"{error}\n" for error in refused))
            return EXIT_CONFIG
        return detach(args, loaded)
    lock = hosting.take_lock(loaded)
    if lock is None:
        return hosting.EXIT_RUNNING
    try:
        tui = not args.no_tui and sys.stdout.isatty() and sys.stdin.isatty()
        resolved = with_secrets_or_report(loaded, ask_in_tui=tui)
        if resolved is None:
            return EXIT_CONFIG
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
                    return int(await run_cockpit_async(engine, list(args.tasks)))

            return asyncio.run(main_tui())

    async def main() -> int:
        engine = Engine(loaded)
        # Before the first await: SIGINT/SIGTERM in any phase (serving the API, reading
        # secrets, cleaning up leftovers) must stop the engine, never hang or kill it raw.
        remove_handlers = engine.install_signal_handlers()
        try:
            async with hosted(engine, lock, args):
                return await supervise_headless(engine, list(args.tasks))
        finally:
            remove_handlers()

    return asyncio.run(main())
