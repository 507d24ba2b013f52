"""``devster run JOB...``: run jobs with what they depend on, stream their output, exit with
their result — the way to gate tests in scripts and CI.

Exit status:
  0    every named job succeeded
  N    the first named job that failed exited with N (its own code); a one-line summary
       of what failed ends the output (on stderr)
  1    a named job failed without a code of its own: it timed out, could not start, was
       killed by a signal or was blocked by a dependency
  2    the project file is missing or invalid, a task does not exist, or a named task is a
       service (services never finish; use ``devster up``)
  130  stopped by Ctrl-C (SIGINT); 143 stopped by SIGTERM

The dependencies ``run`` started are stopped (in reverse order) once the jobs are done.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import gc
import sys

from devster_tui.commands.options import add_config_options
from devster_tui.commands.up import (
    load,
    refuse_unknown_tasks,
    supervise_headless,
    with_secrets_or_report,
)
from devster_tui.errors import ExitCode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``-f``, ``--profile`` and the job names."""
    add_config_options(parser)
    parser.add_argument("tasks", nargs="+", metavar="JOB", help="jobs to run")


def run(args: argparse.Namespace) -> int:
    """Run ``devster run``."""
    # Start-up builds ~60k long-lived objects (modules, pydantic's validators, the config)
    # and almost no cyclic garbage (~800 objects).  The cyclic GC would traverse them ~80
    # times before the first task spawns (~10 ms) and again at interpreter exit (~30 ms).
    # So: no GC until the engine exists, then freeze what start-up built (the GC skips it
    # from then on), and freeze again at exit.  Only cyclic garbage is affected: the engine
    # closes its files and processes itself.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    paused = gc.isenabled()
    gc.disable()
    try:
        return _run(args, resume_gc=paused)
    finally:
        if paused:
            gc.enable()


def _run(args: argparse.Namespace, *, resume_gc: bool) -> int:
    loaded = load(args)
    if loaded is None:
        return ExitCode.CONFIG
    names: list[str] = list(dict.fromkeys(args.tasks))
    refuse_unknown_tasks(loaded, names)
    services = [n for n in names if loaded.project.tasks[n].kind != "job"]
    if services:
        sys.stderr.write(
            f"devster run: {', '.join(services)} "
            f"{'is a service' if len(services) == 1 else 'are services'}: services never "
            "finish; name jobs (kind: job), or use 'devster up'\n"
        )
        return ExitCode.CONFIG
    resolved = with_secrets_or_report(loaded, ask_in_tui=False)
    if resolved is None:
        return ExitCode.CONFIG
    loaded = resolved
    from devster_tui.engine.supervisor import Engine

    async def main() -> int:
        engine = Engine(loaded)
        if resume_gc:
            gc.freeze()
            gc.enable()
        return await supervise_headless(engine, names, until=names)

    return asyncio.run(main())
