"""Watch latency: time from a file write to the new process starting, devster vs watchfiles CLI.

Both watch ``src/`` and start ``date +%s%N >> starts`` on a change: devster through a
``files`` observer at its default debounce triggering a job, the ``watchfiles`` command-line
tool by restarting its command.  Each of 20 rounds writes a file, notes the time, and waits
for a new line in ``starts``; the median of the differences is printed.  Target: devster
<= 80 ms.

    python3 benchmarks/watch_latency.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

CMD = "date +%s%N >> starts"
GAP = 0.3
"""Seconds between rounds, so each write is its own burst."""


def _starts(path: Path) -> list[int]:
    try:
        return [int(x) for x in path.read_text().split()]
    except (OSError, ValueError):
        return []


async def _measure(root: Path, rounds: int, ready: Callable[[], Awaitable[None]]) -> list[float]:
    await ready()
    starts = root / "starts"
    samples: list[float] = []
    for n in range(rounds):
        before = len(_starts(starts))
        await asyncio.sleep(GAP)
        t0 = time.time_ns()
        (root / "src" / "file.txt").write_text(f"change {n}\n")
        deadline = time.monotonic() + 10
        while len(_starts(starts)) <= before:
            if time.monotonic() > deadline:
                raise SystemExit(f"round {n}: no start within 10 s")
            await asyncio.sleep(0.002)
        samples.append((_starts(starts)[before] - t0) / 1e6)
    return samples


async def _devster(root: Path, rounds: int) -> list[float]:
    from devster_tui.config.loader import load_project
    from devster_tui.engine.supervisor import Engine

    (root / "devster.yaml").write_text(
        "observers:\n  src: {files: {paths: [src]}}\n"
        f"tasks:\n  job: {{cmd: '{CMD}', kind: job, triggers: [src], autostart: false}}\n"
    )
    engine = Engine(load_project(root / "devster.yaml"))
    await engine.start()

    async def ready() -> None:
        watcher = engine.triggers.watchers["src"]
        await asyncio.wait_for(watcher.ready.wait(), 10)

    try:
        return await _measure(root, rounds, ready)
    finally:
        await engine.shutdown(force=True)


async def _watchfiles_cli(root: Path, rounds: int) -> list[float]:
    exe = shutil.which("watchfiles")
    if exe is None:
        raise SystemExit("the watchfiles command is not on PATH")
    proc = await asyncio.create_subprocess_exec(
        exe,
        "--target-type",
        "command",
        f"sh -c '{CMD}'",
        "src",
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    async def ready() -> None:
        # The CLI runs the command once at start-up, once it watches.
        deadline = time.monotonic() + 10
        while not _starts(root / "starts"):
            if time.monotonic() > deadline:
                raise SystemExit("watchfiles did not start its command")
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)

    try:
        return await _measure(root, rounds, ready)
    finally:
        proc.terminate()
        await proc.wait()


def main() -> None:
    """Measure both and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    for name, fn in (("devster", _devster), ("watchfiles CLI", _watchfiles_cli)):
        root = Path(tempfile.mkdtemp(prefix="devster-watch-"))
        (root / "src").mkdir()
        try:
            results[name] = asyncio.run(fn(root, args.rounds))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    for name, samples in results.items():
        line = (
            f"{name:15} median {statistics.median(samples):6.1f} ms  "
            f"min {min(samples):6.1f}  max {max(samples):6.1f}  (n={len(samples)})"
        )
        print(line)


if __name__ == "__main__":
    main()
