"""The web view's server: textual-serve with a token, a Host check and an Origin check.

textual-serve and aiohttp come with the ``web`` extra, so they are imported only when a
server is built (:func:`guarded_server_class`): this module imports on a plain install,
and ``devster web`` says how to install the extra before it gets here.
"""

from __future__ import annotations

import hmac
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from aiohttp import web

COOKIE = "devster_web"
"""Cookie that carries the token after the first visit."""

Handler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]


def guarded_server_class() -> type[Any]:
    """textual-serve's ``Server`` with devster's access rules (imports the ``web`` extra)."""
    from aiohttp import web
    from textual_serve.server import Server

    class GuardedServer(Server):
        """textual-serve's server with devster's access rules."""

        def __init__(self, command: str, *, token: str | None, allowed_hosts: set[str], **kw: Any):
            """Serve ``command``; ``token`` (None: none needed); ``allowed_hosts`` for ``Host``."""
            super().__init__(command, **kw)
            self.token = token
            """The token browsers must present (None on loopback)."""
            self.allowed_hosts = allowed_hosts
            """Accepted ``Host`` header values."""

        def _token_ok(self, request: web.Request) -> bool:
            if self.token is None:
                return True
            given = request.query.get("token") or request.cookies.get(COOKIE) or ""
            return hmac.compare_digest(given.encode(), self.token.encode())

        # textual-serve has no public hook for middleware, so this overrides its private
        # ``_make_app``; pyproject.toml pins textual-serve (the ``web`` extra) for that reason.
        async def _make_app(self) -> web.Application:
            app: web.Application = await super()._make_app()

            @web.middleware
            async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
                if self.token is None and request.host not in self.allowed_hosts:
                    return web.Response(status=403, text="foreign Host refused\n")
                origin = request.headers.get("Origin")
                if origin is not None:
                    parts = urlsplit(origin)
                    if parts.netloc not in self.allowed_hosts and parts.netloc != request.host:
                        return web.Response(status=403, text="foreign Origin refused\n")
                    if self.token is not None and parts.netloc != urlsplit(self.public_url).netloc:
                        return web.Response(status=403, text="foreign Origin refused\n")
                if not self._token_ok(request):
                    return web.Response(
                        status=401,
                        text="a token is required: open the URL printed by devster web\n",
                    )
                response = await handler(request)
                if self.token is not None and "token" in request.query:
                    response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict")
                return response

            app.middlewares.append(guard)
            return app

    return GuardedServer


def serve(command: str, *, host: str, port: int, token: str | None, public_url: str | None) -> None:
    """Serve ``command`` per browser connection until Ctrl-C."""
    shown = f"[{host}]" if ":" in host else host
    allowed = {f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]", shown)}
    server = guarded_server_class()(
        command,
        token=token,
        allowed_hosts=allowed,
        host=host,
        port=port,
        title="devster",
        public_url=public_url,
    )
    url = server.public_url + (f"/?token={token}" if token else "/")
    sys.stderr.write(f"devster web: open {url}\n")
    sys.stderr.flush()
    server.serve()
