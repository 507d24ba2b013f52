"""Worker: reads QUEUE:PAYLOAD lines on stdin and handles those of its own queue."""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    """Handle this queue's jobs until stdin ends."""
    queue = sys.argv[1]
    done = Path(__file__).resolve().parent / "jobs-done"
    done.mkdir(exist_ok=True)
    handled = 0
    for line in sys.stdin:
        name, _, payload = line.strip().partition(":")
        if name != queue:
            continue
        handled += 1
        (done / f"{queue}-{payload}").touch()
        print(f"[{queue}] handled {payload} ({handled} so far)", flush=True)
    print(f"[{queue}] input ended after {handled} job(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
