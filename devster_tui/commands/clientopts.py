"""Options and error handling shared by the API client commands (ps, logs, restart, ...).

Import-light: only the standard library and ``devster_tui.api.client`` (with its wire
format); these commands must answer within 200 ms against a running engine.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from devster_tui.api.client import (
    EXIT_NO_ENGINE,
    Address,
    ApiError,
    Client,
    NoEngine,
    resolve_address,
    wire_error_message,
)
from devster_tui.api.wire import WireError

EXIT_OK = 0
"""The request was carried out."""
EXIT_REFUSED = 1
"""The engine refused the request (unknown task, read-only task ...)."""
EXIT_TIMEOUT = 4
"""``devster wait``: the condition was not met in time."""


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
    """Run ``body`` with a client; turn "no engine", HTTP errors and malformed answers into
    messages and codes."""
    try:
        client = Client(address_of(args))
        return body(client)
    except NoEngine as exc:
        sys.stderr.write(
            f"devster: {exc}\n"
            "devster: no engine is running for this project (start one with: devster up -d)\n"
        )
        return EXIT_NO_ENGINE
    except ApiError as exc:
        sys.stderr.write(f"devster: {exc.message}\n")
        return EXIT_REFUSED
    except TimeoutError:
        sys.stderr.write("devster: the engine did not answer in time\n")
        return EXIT_NO_ENGINE
    except WireError as exc:  # something else listens there (or a broken engine)
        sys.stderr.write(f"devster: {wire_error_message(exc)}\n")
        return EXIT_NO_ENGINE
