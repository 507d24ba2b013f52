"""Find the project file: ``-f FILE``, else ``$DEVSTER_FILE``, else the nearest devster.* file.

Import-light on purpose: the CLI runs this before it decides which heavy modules to load.
"""

from __future__ import annotations

import os
from pathlib import Path

CANDIDATES = ("devster.yaml", "devster.yml", "devster.py")
"""File names searched for, in this order, in each directory."""


class DiscoveryError(Exception):
    """No project file could be found, or the named one does not exist."""


def find_config(explicit: str | None = None, start: Path | None = None) -> Path:
    """Return the project file to use.

    Args:
        explicit: The ``-f`` argument, if any.  A directory means "search in it".
        start: Where the upward search begins (default: the current directory).

    Raises:
        DiscoveryError: when nothing is found; the message says where devster looked.
    """
    chosen = explicit or os.environ.get("DEVSTER_FILE") or None
    if chosen:
        path = Path(chosen)
        if path.is_dir():
            for name in CANDIDATES:
                if (path / name).is_file():
                    return (path / name).resolve()
            raise DiscoveryError(f"{path}: no {', '.join(CANDIDATES)} in this directory")
        if not path.exists():
            source = "-f" if explicit else "DEVSTER_FILE"
            raise DiscoveryError(f"{path}: no such file (from {source})")
        return path.resolve()
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        for name in CANDIDATES:
            candidate = directory / name
            if candidate.is_file():
                return candidate
    raise DiscoveryError(
        f"no project file: looked for {', '.join(CANDIDATES)} in {here} and its parents "
        "(use -f FILE or set DEVSTER_FILE)"
    )
