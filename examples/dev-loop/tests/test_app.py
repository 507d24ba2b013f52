"""Unit tests of the built app."""

import sys
import unittest

sys.path.insert(0, "build")
import app


class GreetTest(unittest.TestCase):
    def test_greets_by_name(self) -> None:
        self.assertIn("world", app.greet("world"))


if __name__ == "__main__":
    unittest.main()
