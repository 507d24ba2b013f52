"""Shared helpers for the benchmark scripts: generators, temp projects, timing, RSS."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

GENERATOR = r"""
import sys
n = int(sys.argv[1]); tag = sys.argv[2] if len(sys.argv) > 2 else "g"
pad = "x" * 56
out = sys.stdout.buffer
chunk = []
for i in range(n):
    chunk.append(f"{tag} {i:010d} {pad}\n".encode())
    if len(chunk) == 2000:
        out.write(b"".join(chunk)); chunk.clear()
out.write(b"".join(chunk))
out.flush()
"""
"""Writes N numbered lines of ~80 bytes; the same program is the baseline and the task."""


def devster_bin() -> str:
    """Path of the installed ``devster`` command."""
    found = shutil.which("devster")
    if found is None:
        sys.exit("devster is not on PATH: run `python3 -m pip install -e .` first")
    return found


def workdir(prefix: str) -> Path:
    """A fresh temporary directory with the generator in it."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    (root / "gen.py").write_text(GENERATOR)
    return root


def timed(argv: Sequence[str], cwd: Path, stdout: object = subprocess.DEVNULL) -> tuple[float, int]:
    """Run ``argv`` and return (wall seconds, max RSS of children in KiB so far)."""
    t0 = time.perf_counter()
    subprocess.run(list(argv), cwd=cwd, stdout=stdout, stderr=subprocess.DEVNULL, check=True)  # type: ignore[call-overload]
    wall = time.perf_counter() - t0
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def peak_rss_kib(argv: Sequence[str], cwd: Path) -> tuple[float, int]:
    """Run ``argv`` under a fresh process so RUSAGE_CHILDREN is only its own; (wall, KiB)."""
    code = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, "
        "check=True)\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env=installed_env(),
    ).stdout.split()
    return float(out[0]), int(out[1])


def installed_env() -> dict[str, str]:
    """The environment with bytecode caching on, as an installed devster runs.

    Some shells (and this project's CI machines) export PYTHONDONTWRITEBYTECODE=1, which
    makes every start recompile devster's modules: a cost no installed copy pays.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def count_lines(paths: Sequence[Path]) -> list[bytes]:
    """All lines of the given files, concatenated in order."""
    data = b"".join(p.read_bytes() for p in paths)
    return data.splitlines()


def log_files(state_dir: Path, task: str, stream: str = "stdout") -> list[Path]:
    """A task's log file and its rotated backups, oldest first."""
    logs = state_dir / "logs"
    current = logs / f"{task}.{stream}.log"
    rotated = sorted(
        logs.glob(f"{task}.{stream}.log.*"), key=lambda p: -int(p.name.rsplit(".", 1)[1])
    )
    return [*rotated, current]


def cpu_count() -> int:
    """Cores available to this process."""
    return len(os.sched_getaffinity(0))
