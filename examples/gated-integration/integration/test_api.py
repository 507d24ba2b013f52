"""Integration tests against the running API."""

import os
import unittest
import urllib.request


class ApiTest(unittest.TestCase):
    def test_health_answers_ok(self) -> None:
        url = f"http://127.0.0.1:{os.environ['API_PORT']}/health"
        with urllib.request.urlopen(url, timeout=5) as response:
            self.assertEqual(response.read(), b"ok\n")


if __name__ == "__main__":
    unittest.main()
