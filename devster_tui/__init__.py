"""devster: a terminal cockpit for a developer's running system.

The package root stays import-light: ``devster --version`` and ``--help`` must not pay for
pydantic, textual, docker or asyncssh.  The configuration classes used by ``devster.py``
files (``Project``, ``Task``, ``Observer`` ...) are exported lazily through ``__getattr__``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Project",
    "Task",
    "Observer",
    "Environment",
    "Layer",
    "Host",
    "Dependency",
    "RestartPolicy",
    "Backoff",
    "HealthCheck",
    "StopSpec",
    "StdinSpec",
    "EnsureStep",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    """Import configuration classes on first use, keeping ``import devster_tui`` cheap."""
    if name in _LAZY:
        from devster_tui.config import schema

        return getattr(schema, name)
    raise AttributeError(f"module 'devster_tui' has no attribute {name!r}")
