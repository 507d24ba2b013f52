"""The application: edit greet() and save to see the loop run."""


def greet(name: str) -> str:
    """A greeting for ``name``."""
    return f"hello, {name}"
