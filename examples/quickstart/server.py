"""A tiny HTTP server over the built app: GET /health and GET /hello?name=..."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

BUILD = Path(__file__).resolve().parent / "build"
sys.path.insert(0, str(BUILD))

import app  # noqa: E402  (the built copy of src/app.py)


class Handler(BaseHTTPRequestHandler):
    """Answers /health and /hello."""

    def do_GET(self) -> None:
        """Route a GET request."""
        url = urlparse(self.path)
        if url.path == "/health":
            self.reply(200, {"status": "ok"})
        elif url.path == "/hello":
            name = parse_qs(url.query).get("name", [""])[0]
            self.reply(200, {"message": app.greet(name)})
        else:
            self.reply(404, {"error": f"no route {url.path}"})

    def reply(self, status: int, body: dict[str, str]) -> None:
        """Send ``body`` as JSON."""
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Log requests on stderr (devster shows stdout and stderr apart), except probes."""
        if not self.path.startswith("/health"):
            sys.stderr.write(f"{self.address_string()} {format % args}\n")


def main() -> int:
    """Serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)

    def stop(signum: int, frame: object) -> None:
        print(f"got signal {signum}, shutting down", flush=True)
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()
    server.server_close()
    print("bye", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
