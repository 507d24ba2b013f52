"""The quickstart's application logic: pure functions the server calls and the unit tests test."""

from __future__ import annotations


def greet(name: str) -> str:
    """Return the greeting for ``name`` (``world`` when it is empty)."""
    name = name.strip() or "world"
    return f"Hello, {name}!"


def word_count(text: str) -> int:
    """Count the words of ``text``."""
    return len(text.split())
