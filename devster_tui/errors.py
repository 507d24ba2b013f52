"""The one error a command reports to its user, the exit-code table, and the did-you-mean hint.

Why one module: every command raises :class:`DevsterError` for a problem the user can act
on, and ``cli.main`` catches it once, prints ``devster: MESSAGE`` on one line and exits with
its code, so no command formats its own error or picks its own number, and no traceback
reaches a user.  The codes scripts test for are :class:`ExitCode`, the one table that
docs/cli.md reproduces (a test checks the two against each other).  Standard library only:
the client commands import this on their 200 ms path, and the config and the engine use the
same :func:`did_you_mean` for every "no such NAME" message.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence


class ExitCode(enum.IntEnum):
    """What devster's exit status means, for every command (docs/cli.md, "Exit status")."""

    OK = 0
    """Done: every task ended fine, the request was carried out, the condition holds."""
    FAILED = 1
    """A task failed or was blocked, the engine refused a request, or a wait cannot succeed."""
    CONFIG = 2
    """No project file or an invalid one, an unknown name, an unsafe runtime directory."""
    NO_ENGINE = 3
    """No engine is running for the project (or it does not answer)."""
    TIMEOUT = 4
    """``devster wait``: the condition was not met in time."""
    ALREADY_RUNNING = 5
    """``devster up``: an engine already runs for this project."""
    USAGE = 64
    """The command line is wrong (BSD's EX_USAGE)."""
    SIGHUP = 129
    """Stopped by SIGHUP: the terminal was closed (128 + 1)."""
    SIGINT = 130
    """Stopped by Ctrl-C (128 + 2)."""
    SIGTERM = 143
    """Stopped by SIGTERM (128 + 15)."""


class DevsterError(Exception):
    """A problem to report to the user as one line, with the exit code it stands for."""

    def __init__(self, message: str, exit_code: int = ExitCode.FAILED) -> None:
        """Record the message (one line, without the ``devster:`` prefix) and the code."""
        super().__init__(message)
        self.message = message
        """What to tell the user."""
        self.exit_code = exit_code
        """The exit status of the command that meets this error."""


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``name`` was most likely meant to be, if one is close enough.

    A different case or swapped letters (``bd`` for ``db``) first, then difflib's ratio,
    then abbreviations (``prod`` for ``production``).
    """
    import difflib  # only when there is an unknown name: ``devster --help`` does not pay

    known = list(candidates)
    low = name.lower()
    close = [k for k in known if sorted(k.lower()) == sorted(low)]
    close += difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    close += [
        k
        for k in known
        if len(low) >= 3 and (k.lower().startswith(low) or low.startswith(k.lower()))
    ]
    return close[0] if close else None


def did_you_mean(name: str, candidates: Iterable[str], what: str) -> str:
    """A hint for an unknown ``name``: the closest candidate, or the known names.

    Args:
        name: The unknown name as written.
        candidates: The names that exist.
        what: The plural noun for the candidates, e.g. ``tasks``.

    Returns:
        Text to append to an error message, starting with ``"; "``.
    """
    known = list(candidates)
    match = closest(name, known)
    if match is not None:
        return f"; did you mean {match!r}?"
    if not known:
        return f"; no {what} are defined"
    shown = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
    return f"; known {what}: {shown}"


def unknown_names(label: str, names: Sequence[str], candidates: Iterable[str], what: str) -> str:
    """One line for names that do not exist, each with its suggestion.

    ``no such task: wbe; did you mean 'web'?`` for one name; for several,
    ``no such task: wbe (did you mean 'web'?), zzz; known tasks: web, db``.

    Args:
        label: What precedes the names, e.g. ``no such task``.
        names: The unknown names, as written.
        candidates: The names that exist.
        what: The plural noun for the candidates, e.g. ``tasks``.
    """
    known = list(candidates)
    if len(names) == 1:
        return f"{label}: {names[0]}{did_you_mean(names[0], known, what)}"
    parts = []
    unmatched = False
    for name in names:
        match = closest(name, known)
        parts.append(name if match is None else f"{name} (did you mean {match!r}?)")
        unmatched = unmatched or match is None
    tail = did_you_mean("", known, what) if unmatched else ""
    return f"{label}: {', '.join(parts)}{tail}"
