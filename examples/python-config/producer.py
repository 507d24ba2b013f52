"""Producer: prints a job for one of the queues named in argv every PRODUCER_INTERVAL seconds."""

from __future__ import annotations

import itertools
import os
import signal
import sys
import threading


def main() -> int:
    """Produce jobs round-robin over the queues until stopped."""
    queues = sys.argv[1:] or ["default"]
    interval = float(os.environ.get("PRODUCER_INTERVAL", "0.5"))
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    for number, queue in zip(itertools.count(1), itertools.cycle(queues)):
        if stopping.is_set():
            break
        try:
            print(f"{queue}:job-{number}", flush=True)
        except BrokenPipeError:  # every reader went away
            return 0
        stopping.wait(interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
