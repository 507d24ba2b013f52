"""Integration tests against the running server at APP_URL (behind the manual gate)."""

from __future__ import annotations

import json
import os
import unittest
import urllib.error
import urllib.request

BASE = os.environ.get("APP_URL", "http://127.0.0.1:8765")


def get(path: str) -> tuple[int, dict[str, str]]:
    """GET ``path`` and decode the JSON answer."""
    try:
        with urllib.request.urlopen(BASE + path, timeout=5) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


class ApiTest(unittest.TestCase):
    """The server's routes."""

    def test_health_is_ok(self) -> None:
        """/health answers 200."""
        self.assertEqual(get("/health"), (200, {"status": "ok"}))

    def test_hello_greets_by_name(self) -> None:
        """/hello uses the built app."""
        self.assertEqual(get("/hello?name=devster"), (200, {"message": "Hello, devster!"}))

    def test_unknown_route_is_404(self) -> None:
        """Anything else is a 404."""
        self.assertEqual(get("/nope")[0], 404)


if __name__ == "__main__":
    unittest.main()
