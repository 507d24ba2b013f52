"""How long each API client command takes against a running detached engine (budget 200 ms).

Run: ``python3 benchmarks/cli_latency.py [--repeat N]``.  Starts ``devster up -d`` on a
temporary project with a private runtime directory, runs every client command N times as a
fresh process (what a user pays: interpreter start, imports, one request), prints the median
and worst per command, and brings the engine down.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = f"""
project: bench
tasks:
  web: {{cmd: [{sys.executable}, -c, "import time\\nprint('hi', flush=True)\\ntime.sleep(3600)"]}}
  build: {{cmd: [{sys.executable}, -c, "print('ok')"], kind: job}}
"""

COMMANDS: tuple[tuple[str, ...], ...] = (
    ("ps",),
    ("ps", "--json"),
    ("logs", "web"),
    ("events",),
    ("restart", "build"),
    ("wait", "web", "--for", "running"),
    ("--help",),
)


def main() -> int:
    """Measure and print a table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dvb") as tmp:
        root = Path(tmp)
        (root / "devster.yaml").write_text(PROJECT)
        env = dict(os.environ, XDG_RUNTIME_DIR=str(root))
        devster = [sys.executable, "-m", "devster_tui"]
        subprocess.run([*devster, "up", "-d"], cwd=root, env=env, check=True, timeout=60)
        try:
            print(f"{'command':<28} {'median ms':>10} {'max ms':>8}")
            for command in COMMANDS:
                times = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    subprocess.run(
                        [*devster, *command], cwd=root, env=env, capture_output=True, check=True
                    )
                    times.append((time.perf_counter() - start) * 1000)
                name = " ".join(command)
                print(f"{name:<28} {statistics.median(times):>10.1f} {max(times):>8.1f}")
        finally:
            subprocess.run([*devster, "down"], cwd=root, env=env, timeout=60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
