"""Options and error handling shared by the API client commands (ps, logs, restart, ...).

Import-light: only the standard library and ``devster_tui.api.client`` (with its wire
format); these commands must answer within 200 ms against a running engine.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from devster_tui.api.client import Address, Client, resolve_address, wire_error_message
from devster_tui.api.wire import WireError
from devster_tui.errors import DevsterError, ExitCode, unknown_names


def add_client_options(parser: argparse.ArgumentParser, *, short_file: bool = True) -> None:
    """Add ``-f/--file`` (``--file`` only when ``short_file`` is false), ``--socket`` and
    ``--url`` (where the engine is)."""
    parser.add_argument(
        *(("-f", "--file") if short_file else ("--file",)),
        metavar="FILE",
        help="project file whose engine to talk to (default: found like devster up does)",
    )
    parser.add_argument(
        "--socket",
        metavar="PATH",
        help="the engine's control socket (default: $DEVSTER_SOCKET, else the project's)",
    )
    parser.add_argument(
        "--url",
        metavar="URL",
        help="the engine's TCP listener, http://HOST:PORT (default: $DEVSTER_URL; the token "
        "comes from $DEVSTER_TOKEN)",
    )


def address_of(args: argparse.Namespace) -> Address:
    """The engine address named by the options.

    Raises:
        NoEngine: when no project can be found.
    """
    return resolve_address(socket_path=args.socket, file=args.file, url=args.url)


def guarded(args: argparse.Namespace, body: Callable[[Client], int]) -> int:
    """Run ``body`` with a client; a timeout or a malformed answer becomes a
    :class:`DevsterError` (exit 3), like "no engine" (``NoEngine``); an HTTP error is
    ``ApiError`` (exit 1).

    Raises:
        DevsterError: reported by ``cli.main`` as one line.
    """
    try:
        client = Client(address_of(args))
        return body(client)
    except TimeoutError:
        raise DevsterError("the engine did not answer in time", ExitCode.NO_ENGINE) from None
    except WireError as exc:  # something else listens there (or a broken engine)
        raise DevsterError(wire_error_message(exc), ExitCode.NO_ENGINE) from None


def check_task_names(names: list[str], snapshot: dict[str, Any]) -> None:
    """Refuse names that are not tasks of the engine's ``GET /v1/state`` snapshot.

    Raises:
        DevsterError: ``no such task: wbe; did you mean 'web'?`` (exit 2).
    """
    known = [task["name"] for task in snapshot["state"]["tasks"]]
    missing = [name for name in names if name not in known]
    if missing:
        raise DevsterError(unknown_names("no such task", missing, known, "tasks"), ExitCode.CONFIG)
