"""A minimal engine for process-hygiene tests: spawns tasks, reports their pids, waits.

Run as ``python engine_script.py [--no-guard] [--state-dir DIR] [--ignore-sigint]``.  It
prints one JSON line ``{"engine", "guard", "tasks": {pgid: [pid, ...]}}`` once every task
and group member runs, then sleeps until it is killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time

from devster_tui.engine.procs import ProcRegistry
from devster_tui.executors.base import ProcessSpec
from devster_tui.executors.guard import group_members
from devster_tui.executors.local import LocalExecutor

TASKS: dict[str, tuple[list[str], int]] = {
    "single": (["sleep", "1000"], 1),
    "group": (["sh", "-c", "sleep 1000 & sleep 1000 & wait"], 3),
    "stubborn": (["sh", "-c", "trap '' TERM INT HUP; sleep 1000 & wait"], 2),
}
"""name -> (argv, number of processes in its group once it runs)."""


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-guard", action="store_true")
    parser.add_argument("--state-dir")
    parser.add_argument("--ignore-sigint", action="store_true")
    args = parser.parse_args()
    if args.ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    registry = ProcRegistry(args.state_dir) if args.state_dir else None
    ex = LocalExecutor(guard=not args.no_guard, listener=registry)
    tasks: dict[int, list[int]] = {}
    for name, (argv, size) in TASKS.items():
        spec = ProcessSpec(task=name, argv=argv, env=dict(os.environ), cwd="/")
        proc = await ex.spawn(spec, lambda s, d: None, lambda s: None)
        assert proc.pgid is not None
        deadline = time.monotonic() + 10
        while len(group_members(proc.pgid)) < size:
            assert time.monotonic() < deadline, f"{name} did not start"
            await asyncio.sleep(0.005)
        tasks[proc.pgid] = [m.pid for m in group_members(proc.pgid)]
    if registry is not None:
        # The registry writes its file once per loop iteration: let that happen before we
        # claim to be ready.  (The guard is told at once: no yield needed for it.)
        await asyncio.sleep(0)
    report = {"engine": os.getpid(), "guard": ex.guard_pid, "tasks": tasks}
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
