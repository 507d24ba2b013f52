"""The control API server: HTTP/1.1 + JSON over the engine's Unix socket and optional TCP.

Why a server inside the engine process: the engine is the only ``Controller`` and the only
holder of state and output, so every other client (CLI, attached TUI, web view, metrics
scraper) talks to it here.  Routes (see ``docs/openapi.yaml``):

- ``GET /v1/health``  engine pid, project, selected tasks
- ``GET /v1/state``   a snapshot that decodes to the engine's exact state
- ``GET /v1/events?since=SEQ&follow=1``  newline-delimited event envelopes
- ``POST /v1/commands``  a command; answers the engine's result
- ``GET /v1/tasks/NAME/output?view=&start=&limit=&tail=&wait=``  output lines by cursor
- ``GET /metrics``    Prometheus text

Safety: the Unix socket is 0600 inside a 0700 directory.  The TCP listener requires a
bearer token (compared in constant time), refuses a foreign ``Host`` or ``Origin`` (DNS
rebinding, cross-site requests), and both listeners cap header size, body size, the time a
client may take to send its request and the number of open connections.  A body nested too
deeply for the JSON decoder is a 400 like any other bad body, and a request that fails in
an unforeseen way is answered 500: neither ends the connection unanswered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from devster_tui import __version__
from devster_tui.api import codec, metrics
from devster_tui.api.wire import Request, WireError, parse_head, response_head
from devster_tui.state.commands import CommandResult
from devster_tui.state.events import Event, T
from devster_tui.state.model import EngineState
from devster_tui.state.output import VIEWS, OutputStore
from devster_tui.state.store import Store

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 16 * 1024
"""Largest request head accepted (431 beyond)."""
MAX_BODY_BYTES = 1024 * 1024
"""Largest request body accepted (413 beyond)."""
MAX_CONNECTIONS = 64
"""Open connections per listener; more are answered 503 and closed."""
REQUEST_TIMEOUT = 10.0
"""Seconds a client may take to send one request (head and body); 408 after."""
MAX_LINES = 10_000
"""Most output lines returned by one output request."""
MAX_WAIT = 30.0
"""Longest ``wait`` an output request may ask for."""
CLOSE_GRACE = 2.0
"""Seconds :meth:`ApiServer.close` lets requests in flight finish."""
LINGER = 0.5
"""Seconds an error answer waits for the client to stop sending before closing."""
LINGER_BYTES = 256 * 1024
"""Unread input discarded at most before closing after an error answer."""
FOLLOW_QUEUE = 100_000
"""Events queued for one slow ``follow`` client before it is disconnected."""


class Served(Protocol):
    """What the server needs from an engine (``engine.supervisor.Engine`` provides it)."""

    @property
    def store(self) -> Store:
        """State store."""
        ...

    @property
    def output(self) -> OutputStore:
        """Output store."""
        ...

    @property
    def selected(self) -> list[str]:
        """Tasks started by the engine."""
        ...

    async def execute(self, command: Any) -> CommandResult:
        """Carry out a command."""
        ...

    def on_output_activity(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Register an output-arrived callback."""
        ...


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps applied to every connection."""

    max_header: int = MAX_HEADER_BYTES
    """Largest request head."""
    max_body: int = MAX_BODY_BYTES
    """Largest request body."""
    max_connections: int = MAX_CONNECTIONS
    """Open connections per listener."""
    request_timeout: float = REQUEST_TIMEOUT
    """Seconds to receive one request."""


class _Reply(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class ApiServer:
    """Serves one engine on a Unix socket and, optionally, on a TCP port."""

    def __init__(
        self,
        engine: Served,
        *,
        token: str | None = None,
        limits: Limits | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        """Prepare the server; nothing listens until :meth:`listen_unix` / :meth:`listen_tcp`.

        Args:
            engine: The engine to serve.
            token: Bearer token required on TCP (None: TCP cannot be opened).
            limits: Connection caps.
            monotonic: The engine clock (for uptimes in metrics).
        """
        self.engine = engine
        """The served engine."""
        self.token = token
        """Token required on the TCP listener."""
        self.limits = limits or Limits()
        """Connection caps."""
        import time

        self._monotonic = monotonic or time.monotonic
        self._servers: list[asyncio.Server] = []
        self._handlers: set[asyncio.Task[None]] = set()
        self._streams: set[asyncio.Task[None]] = set()
        self._active: dict[str, int] = {}
        self._allowed_hosts: set[str] = set()
        self._tick: asyncio.Future[None] | None = None
        self._remove_activity: Callable[[], None] | None = None
        self.socket_path: Path | None = None
        """The Unix socket, once listening."""
        self.tcp_port: int | None = None
        """The TCP port, once listening."""

    # ------------------------------------------------------------------ listening

    async def listen_unix(self, path: Path) -> None:
        """Listen on ``path`` (its directory must be private); the socket is made 0600."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        old = os.umask(0o177)
        try:
            server = await asyncio.start_unix_server(
                lambda r, w: self._accept(r, w, "unix"),
                path=str(path),
                limit=self.limits.max_header,
            )
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self.socket_path = path
        self._servers.append(server)
        self._watch_output()

    async def listen_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0: any free port); requires a token.

        Returns:
            The port bound.

        Raises:
            ValueError: when no token was configured.
        """
        if not self.token:
            raise ValueError("a TCP listener needs a token")
        server = await asyncio.start_server(
            lambda r, w: self._accept(r, w, "tcp"),
            host=host,
            port=port,
            limit=self.limits.max_header,
        )
        bound = int(server.sockets[0].getsockname()[1])
        self.tcp_port = bound
        for name in ("127.0.0.1", "localhost", "[::1]", host if ":" not in host else f"[{host}]"):
            self._allowed_hosts.add(f"{name}:{bound}")
        self._servers.append(server)
        self._watch_output()
        return bound

    def _watch_output(self) -> None:
        if self._remove_activity is None:
            self._remove_activity = self.engine.on_output_activity(self._on_output)

    def _on_output(self) -> None:
        tick = self._tick
        if tick is not None:
            self._tick = None
            if not tick.done():
                tick.set_result(None)

    async def close(self) -> None:
        """Stop listening, end open connections (follow streams included), remove the socket."""
        for server in self._servers:
            server.close()
        for task in list(self._streams):
            task.cancel()
        # Let answers in flight (a ``down`` waiting for the shutdown it asked for) go out.
        pending = [t for t in self._handlers if t is not asyncio.current_task()]
        if pending:
            _done, late = await asyncio.wait(pending, timeout=CLOSE_GRACE)
            for task in late:
                task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()
        if self._remove_activity is not None:
            self._remove_activity()
            self._remove_activity = None
        if self.socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.socket_path)

    # ------------------------------------------------------------------ connections

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kind: str
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        active = self._active.get(kind, 0)
        self._active[kind] = active + 1
        try:
            if active >= self.limits.max_connections:
                await self._send_error(writer, 503, "too many connections", close=True)
                await _linger(reader, writer)
                return
            await self._serve(reader, writer, kind)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("API connection failed")
        finally:
            self._active[kind] -= 1
            self._handlers.discard(task)
            self._streams.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_request(self, reader: asyncio.StreamReader) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                return None
            raise
        except asyncio.LimitOverrunError:
            raise WireError(431, "request head too large") from None
        except ValueError:
            raise WireError(431, "request head too large") from None
        if len(head) > self.limits.max_header:
            raise WireError(431, "request head too large")
        request = parse_head(head)
        if "transfer-encoding" in request.headers:
            raise WireError(501, "chunked request bodies are not supported")
        length_text = request.headers.get("content-length", "0") or "0"
        if not length_text.isdigit():
            raise WireError(400, "bad Content-Length")
        length = int(length_text)
        if length > self.limits.max_body:
            raise WireError(413, f"body larger than {self.limits.max_body} bytes")
        if length:
            request.body = await reader.readexactly(length)
        return request

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kind: str
    ) -> None:
        while True:
            try:
                request = await asyncio.wait_for(
                    self._read_request(reader), self.limits.request_timeout
                )
            except TimeoutError:
                await self._send_error(writer, 408, "request not received in time", close=True)
                await _linger(reader, writer)
                return
            except WireError as exc:
                await self._send_error(writer, exc.status, str(exc), close=True)
                await _linger(reader, writer)
                return
            if request is None:
                return
            try:
                if kind == "tcp":
                    self._check_tcp(request)
                keep = await self._route(request, writer)
            except _Reply as reply:
                await self._send_error(
                    writer,
                    reply.status,
                    str(reply),
                    close=not request.keep_alive,
                    extra=reply.headers,
                )
                keep = request.keep_alive
            except ConnectionError:
                raise
            except Exception:
                log.exception("API request %s %s failed", request.method, request.path)
                await self._send_error(writer, 500, "internal error", close=True)
                return
            if not keep:
                return

    def _check_tcp(self, request: Request) -> None:
        host = request.headers.get("host", "")
        if host not in self._allowed_hosts:
            raise _Reply(403, "foreign Host header refused")
        origin = request.headers.get("origin")
        if origin is not None and origin not in {f"http://{h}" for h in self._allowed_hosts}:
            raise _Reply(403, "foreign Origin refused")
        auth = request.headers.get("authorization", "")
        scheme, _, given = auth.partition(" ")
        expected = (self.token or "").encode()
        if (
            scheme.lower() != "bearer"
            or not expected
            or not hmac.compare_digest(given.strip().encode(), expected)
        ):
            raise _Reply(401, "a valid token is required", {"WWW-Authenticate": "Bearer"})

    # ------------------------------------------------------------------ responses

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        content_type: str,
        *,
        close: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        headers = {
            "Content-Type": content_type,
            "Content-Length": str(len(body)),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
        if close:
            headers["Connection"] = "close"
        headers.update(extra or {})
        writer.write(response_head(status, headers) + body)
        await writer.drain()

    async def _send_json(
        self, writer: asyncio.StreamWriter, value: Any, *, close: bool, status: int = 200
    ) -> None:
        body = json.dumps(value, separators=(",", ":")).encode("ascii")
        await self._send(writer, status, body, "application/json", close=close)

    async def _send_error(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        message: str,
        *,
        close: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        body = json.dumps({"error": message}).encode("ascii")
        with contextlib.suppress(ConnectionError):
            await self._send(writer, status, body, "application/json", close=close, extra=extra)

    # ------------------------------------------------------------------ routes

    async def _route(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        parts = request.parts
        close = not request.keep_alive
        method = request.method
        if parts == ["v1", "health"]:
            self._method(request, "GET")
            await self._send_json(writer, self._health(), close=close)
        elif parts == ["v1", "state"]:
            self._method(request, "GET")
            store = self.engine.store
            await self._send_json(
                writer,
                {
                    "seq": store.seq,
                    "now": self._monotonic(),
                    "state": codec.state_to_json(store.state),
                },
                close=close,
            )
        elif parts == ["v1", "events"]:
            self._method(request, "GET")
            since = _int(request.query.get("since", "0"), "since")
            if request.query.get("follow") in ("1", "true", "yes"):
                await self._follow(writer, since)
                return False
            events = self.engine.store.events_since(since)
            body = "".join(event.to_json() + "\n" for event in events).encode()
            await self._send(writer, 200, body, "application/x-ndjson", close=close)
        elif parts == ["v1", "commands"]:
            self._method(request, "POST")
            raw = _json_body(request.body)
            try:
                command = codec.command_from_json(raw)
            except ValueError as exc:
                raise _Reply(400, str(exc)) from None
            result = await self.engine.execute(command)
            await self._send_json(writer, codec.result_to_json(result), close=close)
        elif len(parts) == 4 and parts[:2] == ["v1", "tasks"] and parts[3] == "output":
            self._method(request, "GET")
            await self._send_json(writer, await self._output(parts[2], request.query), close=close)
        elif parts == ["metrics"]:
            self._method(request, "GET")
            store = self.engine.store
            text = metrics.render(
                store.state, self.engine.output.stats, self._monotonic(), events=store.seq
            )
            await self._send(writer, 200, text.encode(), metrics.CONTENT_TYPE, close=close)
        else:
            raise _Reply(404, f"no such resource: {method} {request.path}")
        return not close

    @staticmethod
    def _method(request: Request, allowed: str) -> None:
        if request.method != allowed:
            raise _Reply(405, f"use {allowed}", {"Allow": allowed})

    def _health(self) -> dict[str, Any]:
        state = self.engine.store.state
        return {
            "ok": True,
            "pid": os.getpid(),
            "version": __version__,
            "project": state.project,
            "config_file": state.config_file,
            "running": state.running,
            "stopping": state.stopping,
            "seq": self.engine.store.seq,
            "selected": list(self.engine.selected),
        }

    async def _output(self, task: str, query: dict[str, str]) -> dict[str, Any]:
        if task not in self.engine.store.state.tasks:
            raise _Reply(404, f"unknown task: {task}")
        view = query.get("view", "both")
        if view not in VIEWS:
            raise _Reply(400, f"view must be one of {', '.join(VIEWS)}")
        output = self.engine.output
        limit = min(MAX_LINES, max(0, _int(query.get("limit", "1000"), "limit")))
        if "tail" in query:
            start = max(0, output.end(task, view) - max(0, _int(query["tail"], "tail")))
        else:
            start = max(0, _int(query.get("start", "0"), "start"))
        wait = min(MAX_WAIT, max(0.0, _float(query.get("wait", "0"), "wait")))
        if wait and output.end(task, view) <= start:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            while output.end(task, view) <= start:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                if self._tick is None:
                    self._tick = loop.create_future()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._tick), remaining)
        lines = output.read(task, view, start, limit)
        return {
            "task": task,
            "view": view,
            "first": output.first(task, view),
            "end": output.end(task, view),
            "lines": [
                [line.n, line.stream, codec.line_text(line.data), line.run, line.partial]
                for line in lines
            ],
        }

    async def _follow(self, writer: asyncio.StreamWriter, since: int) -> None:
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        store = self.engine.store

        def on_event(event: Event, _state: EngineState) -> None:
            if queue.qsize() >= FOLLOW_QUEUE:
                queue.put_nowait(None)
            else:
                queue.put_nowait(event)

        unsubscribe = store.subscribe(on_event)
        me = asyncio.current_task()
        if me is not None:
            self._streams.add(me)
        try:
            writer.write(
                response_head(
                    200,
                    {
                        "Content-Type": "application/x-ndjson",
                        "Cache-Control": "no-store",
                        "Connection": "close",
                    },
                )
            )
            last = since
            backlog = store.events_since(since)
            if backlog:
                writer.write("".join(e.to_json() + "\n" for e in backlog).encode())
                last = backlog[-1].seq
            await writer.drain()
            if backlog and backlog[-1].type == T.ENGINE_STOPPED:
                return
            while True:
                event = await queue.get()
                if event is None:
                    return
                if event.seq <= last:
                    continue
                last = event.seq
                chunk = [event.to_json()]
                done = event.type == T.ENGINE_STOPPED
                while not queue.empty() and not done:
                    more = queue.get_nowait()
                    if more is None:
                        return
                    if more.seq > last:
                        last = more.seq
                        chunk.append(more.to_json())
                        done = more.type == T.ENGINE_STOPPED
                writer.write(("\n".join(chunk) + "\n").encode())
                await writer.drain()
                if done:
                    # Nothing follows the engine's last event: end the stream.
                    return
        finally:
            unsubscribe()
            if me is not None:
                self._streams.discard(me)


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """After an error answer: half-close and discard a little unread input, so closing
    does not reset the connection before the client has read the answer."""
    with contextlib.suppress(OSError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LINGER
    budget = LINGER_BYTES
    with contextlib.suppress(OSError, TimeoutError, ConnectionError):
        while budget > 0:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            data = await asyncio.wait_for(reader.read(65536), remaining)
            if not data:
                return
            budget -= len(data)


def _json_body(body: bytes) -> Any:
    """The JSON value of a request body.

    Raises:
        _Reply: 400 for a body that is not JSON, or nested deeper than the decoder's
            recursion limit (``[`` * 100000 raises RecursionError, not ValueError).
    """
    try:
        return json.loads(body or b"null")
    except RecursionError:
        raise _Reply(400, "the body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Reply(400, str(exc)) from None


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _Reply(400, f"{name} must be an integer") from None


def _float(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _Reply(400, f"{name} must be a number") from None
