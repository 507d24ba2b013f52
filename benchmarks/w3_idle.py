"""W3: 100 tasks of `sleep 1000`: time to all running, engine idle CPU, time to stop, survivors.

Baselines named by the issue (measured on this kind of machine): mprocs 0.22 s to running and
0.06 s to stop, supervisord 1.6 s and 2.1 s.  Targets: all running within 0.3 s, idle CPU
under 0.5% of a core over 10 s, everything stopped within 0.2 s of the request, 0 survivors.
The engine runs in this process (the real Engine, LocalExecutor and state directory), so the
figures exclude interpreter start-up and config loading, which `benchmarks/startup.py` covers.

Run: python3 benchmarks/w3_idle.py [--tasks N] [--idle SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import psutil
from _common import workdir


async def _until(predicate: object, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.002)
    return False


async def bench(tasks: int, idle: float) -> None:
    from devster_tui.config.loader import load_project
    from devster_tui.engine.supervisor import Engine
    from devster_tui.state.model import Status

    root: Path = workdir("devster-w3-")
    body = ["version: 1", "project: w3", "tasks:"]
    for i in range(tasks):
        body += [f"  s{i}:", "    cmd: [sleep, '1000']", "    stop: {timeout: 5s}"]
    (root / "devster.yaml").write_text("\n".join(body) + "\n")
    engine = Engine(load_project(root / "devster.yaml"))
    me = psutil.Process(os.getpid())

    def running() -> bool:
        states = engine.store.state.tasks.values()
        return len(states) == tasks and all(s.status is Status.RUNNING for s in states)

    t0 = time.perf_counter()
    await engine.start()
    ok = await _until(running, 30)
    t_running = time.perf_counter() - t0
    pids = [s.pid for s in engine.store.state.tasks.values() if s.pid]

    await asyncio.sleep(0.5)  # let start-up work settle before measuring idle CPU
    cpu0 = me.cpu_times()
    w0 = time.perf_counter()
    await asyncio.sleep(idle)
    cpu1 = me.cpu_times()
    idle_pct = (
        100 * ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / (time.perf_counter() - w0)
    )

    t1 = time.perf_counter()
    await engine.shutdown()
    t_stop = time.perf_counter() - t1
    await engine.close()
    survivors = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    print(
        f"W3: {tasks} x sleep 1000 | all running {t_running:.3f}s (target 0.3s; mprocs 0.22s, "
        f"supervisord 1.6s){'' if ok else ' NOT ALL RUNNING'} | idle CPU {idle_pct:.2f}% of a "
        f"core over {idle:.0f}s (target < 0.5%) | stopped in {t_stop:.3f}s (target 0.2s; "
        f"mprocs 0.06s, supervisord 2.1s) | survivors {len(survivors)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--idle", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(bench(args.tasks, args.idle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
