"""``devster web [--host] [--port]``: the cockpit in a browser (textual-serve).

textual-serve starts one process per browser connection; each runs ``devster attach`` on
the engine's socket, so every tab is a client of the same engine.  The server listens on
loopback by default; on any other address a token is required (``?token=`` on the first
visit, then a same-site cookie), compared in constant time, and a WebSocket from a foreign
``Origin`` is refused.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from devster_tui.commands.clientopts import add_client_options
from devster_tui.errors import DevsterError, ExitCode

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
"""Hosts that need no token."""

WEB_EXTRA_MODULES = ("textual_serve", "aiohttp")
"""What the ``web`` extra installs and :mod:`devster_tui.api.webserve` imports."""


def missing_web_extra() -> list[str]:
    """The modules of the ``web`` extra that are not installed (empty when it is).

    Checked with ``find_spec`` before anything is imported, so a plain ``pip install
    devster-tui`` gets a one-line instruction instead of a ``ModuleNotFoundError``.
    """
    from importlib.util import find_spec

    return [name for name in WEB_EXTRA_MODULES if find_spec(name) is None]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the client options, ``--host``, ``--port``, ``--token`` and ``--read-only``."""
    add_client_options(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--token",
        help="token browsers must present off loopback (default: $DEVSTER_WEB_TOKEN, "
        "else a random one, printed)",
    )
    parser.add_argument("--public-url", help="URL browsers use (default: http://HOST:PORT)")
    parser.add_argument("--read-only", action="store_true", help="viewers cannot act")


def attach_command(args: argparse.Namespace, socket: str) -> str:
    """The shell command each browser connection runs."""
    argv = [sys.executable, "-m", "devster_tui", "attach", "--socket", socket]
    if args.read_only:
        argv.append("--read-only")
    return shlex.join(argv)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C."""
    missing = missing_web_extra()
    if missing:
        sys.stderr.write(
            f"devster web: needs the web extra ({', '.join(missing)} not installed): "
            "python3 -m pip install 'devster-tui[web]'\n"
        )
        return ExitCode.CONFIG
    from devster_tui.api.client import START_HINT, Client
    from devster_tui.commands.clientopts import address_of

    try:
        address = address_of(args)
        Client(address, timeout=2.0).json("GET", "/v1/health")
    except OSError as exc:  # NoEngine is a DevsterError already
        raise DevsterError(
            f"no engine is running for this project ({exc}); {START_HINT}", ExitCode.NO_ENGINE
        ) from None
    if address.socket is None:
        sys.stderr.write("devster web: needs the engine's Unix socket (not --url)\n")
        return ExitCode.USAGE
    token = None
    if args.host not in LOOPBACK:
        import secrets

        token = args.token or os.environ.get("DEVSTER_WEB_TOKEN") or secrets.token_urlsafe(24)
    from devster_tui.api.webserve import serve

    serve(
        attach_command(args, os.path.abspath(address.socket)),
        host=args.host,
        port=args.port,
        token=token,
        public_url=args.public_url,
    )
    return 0
