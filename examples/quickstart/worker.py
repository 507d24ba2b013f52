"""A worker: calls the server's /hello once per WORKER_INTERVAL seconds and prints the answer."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.request


def main() -> int:
    """Work until SIGTERM or SIGINT; exit 1 after 5 failed calls in a row."""
    base = os.environ.get("APP_URL", "http://127.0.0.1:8765")
    interval = float(os.environ.get("WORKER_INTERVAL", "1"))
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    job = failures = 0
    while not stopping.is_set():
        job += 1
        try:
            with urllib.request.urlopen(f"{base}/hello?name=job-{job}", timeout=5) as resp:
                message = json.load(resp)["message"]
            print(f"job {job}: {message}", flush=True)
            failures = 0
        except (urllib.error.URLError, OSError, ValueError) as exc:
            failures += 1
            print(f"job {job} failed: {exc}", file=sys.stderr, flush=True)
            if failures >= 5:
                return 1
        stopping.wait(interval)
    print(f"stopped after {job} job(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
