"""Unit tests of src/app.py (run on every save by the unit-tests task)."""

from __future__ import annotations

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import app


class GreetTest(unittest.TestCase):
    """greet()."""

    def test_greets_by_name(self) -> None:
        """A name is used as given."""
        self.assertEqual(app.greet("Ada"), "Hello, Ada!")

    def test_empty_name_greets_the_world(self) -> None:
        """Blank names fall back to 'world'."""
        self.assertEqual(app.greet("  "), "Hello, world!")


class WordCountTest(unittest.TestCase):
    """word_count()."""

    def test_counts_words_separated_by_any_whitespace(self) -> None:
        """Tabs and newlines separate words too."""
        self.assertEqual(app.word_count("a b\tc\nd"), 4)


if __name__ == "__main__":
    unittest.main()
