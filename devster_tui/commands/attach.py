"""``devster attach``: the cockpit of an engine that runs elsewhere (``up -d``, another TTY).

The state is rebuilt with the engine's reducer from a snapshot plus the event stream;
output is read from the engine's output store over the API; commands go over the socket.
Quitting (``q``) leaves the tasks running; ``devster down`` stops them.  With ``--bus``
the cockpit follows a project's events on NATS JetStream instead, read-only and without
output lines.
"""

from __future__ import annotations

import argparse
import sys

from devster_tui.commands.clientopts import add_client_options
from devster_tui.errors import DevsterError, ExitCode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the client options, ``--read-only``, ``--bus`` and ``--project``."""
    add_client_options(parser)
    parser.add_argument("--read-only", action="store_true", help="refuse every action (a viewer)")
    parser.add_argument(
        "--bus",
        metavar="URL",
        help="follow the project on a NATS JetStream server (nats://HOST:PORT), read-only",
    )
    parser.add_argument("--project", metavar="NAME", help="with --bus: the project to follow")
    parser.add_argument("--theme", metavar="NAME", help="colour theme")


def run(args: argparse.Namespace) -> int:
    """Open the attached cockpit; return when it is closed."""
    import asyncio

    if args.bus:
        if not args.project:
            sys.stderr.write("devster attach: --bus needs --project NAME\n")
            return ExitCode.USAGE
        return asyncio.run(_attach_bus(args))
    return asyncio.run(_attach_api(args))


async def _attach_api(args: argparse.Namespace) -> int:
    import asyncio

    from devster_tui.api.client import START_HINT
    from devster_tui.api.remote import RemoteEngine
    from devster_tui.commands.clientopts import address_of

    try:
        remote = await RemoteEngine.connect(address_of(args))
    except OSError as exc:  # NoEngine is a DevsterError already
        raise DevsterError(
            f"no engine is running for this project ({exc}); {START_HINT}", ExitCode.NO_ENGINE
        ) from None
    from devster_tui.tui.app import CockpitApp

    project = remote.store.state.project or "devster"
    app = CockpitApp(
        remote.store,
        remote.output,
        remote,
        title=f"devster · {project} (attached)",
        theme=args.theme,
        read_only=args.read_only,
    )
    gone: list[bool] = []

    def on_end() -> None:
        gone.append(True)
        app.exit(0)

    sync = asyncio.create_task(remote.run(on_end))
    try:
        await app.run_async()
    finally:
        sync.cancel()
        await asyncio.gather(sync, return_exceptions=True)
    if gone:
        sys.stderr.write("devster: the engine stopped\n")
    return 0


async def _attach_bus(args: argparse.Namespace) -> int:
    import asyncio

    from devster_tui.api.remote import BusMirror
    from devster_tui.tui.app import CockpitApp

    mirror = BusMirror(args.bus, args.project)
    app = CockpitApp(
        mirror.store,
        mirror.output,
        mirror.controller,
        title=f"devster · {args.project} (bus, read-only)",
        theme=args.theme,
        read_only=True,
    )
    failure: list[str] = []

    async def follow() -> None:
        try:
            await mirror.run()
        except OSError as exc:
            failure.append(str(exc))
            app.exit(ExitCode.NO_ENGINE)

    sync = asyncio.create_task(follow())
    try:
        await app.run_async()
    finally:
        sync.cancel()
        await asyncio.gather(sync, return_exceptions=True)
    if failure:
        raise DevsterError(failure[0], ExitCode.NO_ENGINE)
    return ExitCode.OK
