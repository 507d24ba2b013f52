"""W1 and W2: output throughput of `devster run` against the same generator piped to a file.

W1: one task prints 1,000,000 lines of ~80 bytes.  Baseline: `python3 gen.py 1000000 > file`.
W2: 20 tasks x 100,000 lines at once.  Baseline: the 20 generators each redirected to a file,
    started together.
devster's figure is the wall time of `devster run ...` (headless, output to /dev/null) until
every task has finished and its lines are in the task's log file.  Every line is then checked:
0 lost, 0 duplicated, 0 mixed (a line must be exactly one generator line).

Run: python3 benchmarks/w1_w2_throughput.py [--lines N] [--tasks N] [--repeat N]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

from _common import count_lines, devster_bin, log_files, peak_rss_kib, timed, workdir

LINE = re.compile(rb"^(t\d+|g) (\d{10}) x{56}$")


def _project(root: Path, tasks: int, lines: int) -> None:
    body = [
        "version: 1",
        "project: bench",
        "logs: {max_bytes: 4GiB, backups: 0}",
        "tasks:",
    ]
    for i in range(tasks):
        body += [f"  t{i}:", f"    cmd: [python3, gen.py, '{lines}', t{i}]", "    kind: job"]
    (root / "devster.yaml").write_text("\n".join(body) + "\n")


def _check(root: Path, tasks: int, lines: int) -> tuple[int, int, int]:
    """(lost, duplicated, mixed) over all tasks' logs."""
    lost = dup = mixed = 0
    for i in range(tasks):
        seen = 0
        expect = 0
        for raw in count_lines(log_files(root / ".devster", f"t{i}")):
            m = LINE.match(raw)
            if m is None or m.group(1) != f"t{i}".encode():
                mixed += 1
                continue
            n = int(m.group(2))
            if n < expect:
                dup += 1
            elif n > expect:
                lost += n - expect
            expect = n + 1
            seen += 1
        lost += max(0, lines - expect)
    return lost, dup, mixed


def _baseline(root: Path, tasks: int, lines: int) -> float:
    script = (
        " ".join(f"python3 gen.py {lines} t{i} > base{i}.txt &" for i in range(tasks)) + " wait"
    )
    wall, _ = timed(["/bin/sh", "-c", script], root)
    return wall


def run(name: str, tasks: int, lines: int, repeat: int, target: float) -> None:
    root = workdir(f"devster-{name}-")
    _project(root, tasks, lines)
    names = [f"t{i}" for i in range(tasks)]
    base = []
    mine = []
    rss = 0
    verdict = (0, 0, 0)
    for _ in range(repeat):
        base.append(_baseline(root, tasks, lines))
        subprocess.run(["rm", "-rf", str(root / ".devster")], check=True)
        wall, rss_kib = peak_rss_kib([devster_bin(), "run", *names], root)
        mine.append(wall)
        rss = max(rss, rss_kib)
        verdict = _check(root, tasks, lines)
    b = statistics.median(base)
    d = statistics.median(mine)
    lost, dup, mixed = verdict
    print(
        f"{name}: {tasks} task(s) x {lines:,} lines | baseline (gen > file) {b:.2f}s | "
        f"devster run {d:.2f}s | ratio {d / b:.2f}x (target <= {target}x) | "
        f"lost {lost} dup {dup} mixed {mixed} | peak RSS {rss / 1024:.0f} MB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["w1", "w2"])
    args = parser.parse_args()
    if args.only in (None, "w1"):
        run("W1", 1, 1_000_000, args.repeat, 1.5)
    if args.only in (None, "w2"):
        run("W2", 20, 100_000, args.repeat, 2.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
