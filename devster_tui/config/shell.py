"""How a configured command becomes an argv: a string runs through ``/bin/sh -c``.

Every command in the configuration (``cmd``, ``health.exec``, ``stop.command``, a secret's
``command``) is either a string for the shell or an argv list executed as is.  This module
is the one place that knows which shell, so tasks, probes, stop commands and secrets agree.
"""

from __future__ import annotations

from collections.abc import Sequence

SHELL = "/bin/sh"
"""The shell that runs commands written as one string."""


def shell_argv(command: str) -> list[str]:
    """The argv that runs ``command`` through the shell.

    Args:
        command: A shell command line.

    Returns:
        ``["/bin/sh", "-c", command]``.
    """
    return [SHELL, "-c", command]


def command_argv(command: str | Sequence[str]) -> list[str]:
    """The argv of a configured command: a string through the shell, a list as is.

    Args:
        command: A shell command line, or an argv list.

    Returns:
        A new list.
    """
    return shell_argv(command) if isinstance(command, str) else list(command)
