"""Wall time of `devster --help` / `--version` against a bare `python -c pass` baseline.

Run: python3 benchmarks/startup.py [--runs N]
Budget (issue 2): under 150 ms wall time on this machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def _time(argv: list[str], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        samples.append(time.perf_counter() - t0)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    devster = shutil.which("devster")
    if devster is None:
        print("devster is not on PATH: pip install -e . first", file=sys.stderr)
        return 2
    baseline = _time([sys.executable, "-c", "pass"], args.runs)
    base_med = statistics.median(baseline)
    print(f"baseline  python -c pass      median {base_med * 1000:6.1f} ms")
    worst = 0.0
    for flag in ("--help", "--version"):
        samples = _time([devster, flag], args.runs)
        med = statistics.median(samples)
        p90 = sorted(samples)[int(len(samples) * 0.9) - 1]
        worst = max(worst, med)
        print(
            f"devster {flag:<10}            median {med * 1000:6.1f} ms  p90 {p90 * 1000:6.1f} ms"
            f"  ratio {med / base_med:4.2f}x baseline"
        )
    verdict = "within" if worst < 0.150 else "OVER"
    print(f"budget 150 ms: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
