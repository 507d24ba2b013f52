"""Clients of the control API: a blocking one for CLI commands, an asyncio one for the TUI.

Import-light on purpose (standard library only): ``devster ps`` and friends must answer
within 200 ms, so they never import pydantic, textual or the engine.  Each request uses
its own connection (``Connection: close``), which costs a fraction of a millisecond on a
Unix socket and keeps the code free of connection-pool state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from devster_tui.api.wire import WireError, build_request, parse_response_head
from devster_tui.errors import DevsterError, ExitCode

START_HINT = "start one with: devster up -d"
"""What a user without an engine can do (ends every "no engine" message)."""


class NoEngine(DevsterError):
    """No engine answers at the address (no socket, or nothing listening)."""

    def __init__(self, message: str) -> None:
        """Record what was tried; the exit status is :attr:`ExitCode.NO_ENGINE`."""
        super().__init__(message, ExitCode.NO_ENGINE)


class ApiError(DevsterError):
    """The engine answered with an HTTP error (reported as the engine's message, exit 1)."""

    def __init__(self, status: int, message: str) -> None:
        """Record the status and the engine's message."""
        super().__init__(message, ExitCode.FAILED)
        self.status = status
        """HTTP status."""

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status})"


@dataclass(frozen=True, slots=True)
class Address:
    """Where an engine listens: a Unix socket, or a TCP URL with a token."""

    socket: str | None = None
    """Unix socket path."""
    url: str | None = None
    """``http://HOST:PORT`` of a TCP listener."""
    token: str | None = None
    """Bearer token for the TCP listener."""

    @property
    def host_header(self) -> str:
        """The ``Host`` header to send."""
        if self.url:
            return urlsplit(self.url).netloc
        return "localhost"

    def headers(self) -> dict[str, str]:
        """Extra request headers (the token, on TCP)."""
        return {"Authorization": f"Bearer {self.token}"} if self.url and self.token else {}

    def describe(self) -> str:
        """The address for messages."""
        return self.url or self.socket or "?"


def resolve_address(
    *, socket_path: str | None = None, file: str | None = None, url: str | None = None
) -> Address:
    """Find the engine to talk to.

    Order: ``--url`` / ``$DEVSTER_URL`` (with ``$DEVSTER_TOKEN``), ``--socket`` /
    ``$DEVSTER_SOCKET``, else the socket of the project found like ``devster up`` does.

    Raises:
        NoEngine: when no project file can be found to derive the socket from.
    """
    url = url or os.environ.get("DEVSTER_URL")
    if url:
        return Address(url=url.rstrip("/"), token=os.environ.get("DEVSTER_TOKEN"))
    socket_path = socket_path or os.environ.get("DEVSTER_SOCKET")
    if socket_path:
        return Address(socket=socket_path)
    from devster_tui.api.paths import socket_path as project_socket
    from devster_tui.config.discover import DiscoveryError, find_config

    try:
        config = find_config(file)
    except DiscoveryError as exc:
        raise NoEngine(f"no engine is running for this project: {exc}") from None
    return Address(socket=str(project_socket(config)))


def _nothing_at(address: Address, exc: OSError) -> str:
    return (
        f"no engine is running for this project (nothing at {address.describe()}: "
        f"{exc.strerror}); {START_HINT}"
    )


def _connect(address: Address, timeout: float | None) -> socket.socket:
    try:
        if address.url:
            parts = urlsplit(address.url)
            return socket.create_connection(
                (parts.hostname or "127.0.0.1", parts.port or 80), timeout
            )
        assert address.socket is not None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address.socket)
        except BaseException:
            sock.close()
            raise
        return sock
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError) as exc:
        raise NoEngine(_nothing_at(address, exc)) from None


def _error_message(body: bytes) -> str:
    try:
        value = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()
    if isinstance(value, dict) and "error" in value:
        return str(value["error"])
    return str(value)


class Client:
    """A blocking API client (one connection per request)."""

    def __init__(self, address: Address, timeout: float | None = 10.0) -> None:
        """Talk to the engine at ``address``; ``timeout`` bounds each socket operation."""
        self.address = address
        """Where the engine listens."""
        self.timeout = timeout
        """Seconds per socket operation (None: wait forever)."""
        self._stream_sock: socket.socket | None = None

    def set_stream_timeout(self, seconds: float | None) -> None:
        """Change the read timeout of the stream being iterated (``wait`` shrinks it)."""
        if self._stream_sock is not None:
            self._stream_sock.settimeout(seconds)

    def _open(
        self, method: str, target: str, body: Any = None
    ) -> tuple[socket.socket, int, dict[str, str], bytes]:
        data = None if body is None else json.dumps(body).encode()
        sock = _connect(self.address, self.timeout)
        try:
            request = build_request(
                method,
                target,
                host=self.address.host_header,
                body=data,
                headers=self.address.headers(),
            )
            sock.sendall(request)
            buffer = b""
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    raise NoEngine(f"the engine at {self.address.describe()} closed the connection")
                buffer += chunk
            head, _, rest = buffer.partition(b"\r\n\r\n")
            status, headers = parse_response_head(head)
        except BaseException:
            sock.close()
            raise
        return sock, status, headers, rest

    def request(self, method: str, target: str, body: Any = None) -> tuple[int, bytes]:
        """Send one request; return the status and the whole body."""
        sock, status, headers, rest = self._open(method, target, body)
        with sock:
            length = headers.get("content-length")
            parts = [rest]
            have = len(rest)
            while length is None or have < int(length):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                parts.append(chunk)
                have += len(chunk)
        return status, b"".join(parts)

    def json(self, method: str, target: str, body: Any = None) -> Any:
        """Send one request and decode the JSON answer.

        Raises:
            ApiError: for an HTTP error status.
            NoEngine: when nothing answers.
        """
        status, data = self.request(method, target, body)
        if status >= 400:
            raise ApiError(status, _error_message(data))
        return json.loads(data)

    def stream(self, target: str) -> Iterator[bytes]:
        """Send a GET whose answer is a stream of lines; yield each line (no newline)."""
        sock, status, _headers, rest = self._open("GET", target)
        with sock:
            if status >= 400:
                sock.settimeout(self.timeout)
                body = rest + sock.recv(65536)
                raise ApiError(status, _error_message(body))
            sock.settimeout(self.timeout)
            self._stream_sock = sock
            buffer = rest
            while True:
                while b"\n" in buffer:
                    line, _, buffer = buffer.partition(b"\n")
                    yield line
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buffer += chunk


class AsyncClient:
    """An asyncio API client (one connection per request)."""

    def __init__(self, address: Address, timeout: float = 10.0) -> None:
        """Talk to the engine at ``address``; ``timeout`` bounds each request."""
        self.address = address
        """Where the engine listens."""
        self.timeout = timeout
        """Seconds per request (streams are not bounded)."""

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        address = self.address
        try:
            if address.url:
                parts = urlsplit(address.url)
                return await asyncio.open_connection(parts.hostname, parts.port or 80)
            assert address.socket is not None
            return await asyncio.open_unix_connection(address.socket, limit=2**24)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError) as exc:
            raise NoEngine(_nothing_at(address, exc)) from None

    async def _start(
        self, method: str, target: str, body: Any
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int, dict[str, str]]:
        reader, writer = await self._open()
        try:
            data = None if body is None else json.dumps(body).encode()
            writer.write(
                build_request(
                    method,
                    target,
                    host=self.address.host_header,
                    body=data,
                    headers=self.address.headers(),
                )
            )
            await writer.drain()
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                raise NoEngine("the engine closed the connection") from None
            status, headers = parse_response_head(head[:-4])
        except BaseException:
            writer.close()
            raise
        return reader, writer, status, headers

    async def request(self, method: str, target: str, body: Any = None) -> tuple[int, bytes]:
        """Send one request; return the status and the whole body."""

        async def go() -> tuple[int, bytes]:
            reader, writer, status, headers = await self._start(method, target, body)
            try:
                length = headers.get("content-length")
                if length is not None:
                    data = await reader.readexactly(int(length))
                else:
                    data = await reader.read()
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            return status, data

        return await asyncio.wait_for(go(), self.timeout)

    async def json(self, method: str, target: str, body: Any = None) -> Any:
        """Send one request and decode the JSON answer.

        Raises:
            ApiError: for an HTTP error status.
            NoEngine: when nothing answers.
        """
        status, data = await self.request(method, target, body)
        if status >= 400:
            raise ApiError(status, _error_message(data))
        return json.loads(data)

    async def stream(self, target: str) -> AsyncIterator[bytes]:
        """Yield the lines of a streamed answer (``/v1/events?follow=1``)."""
        reader, writer, status, _headers = await asyncio.wait_for(
            self._start("GET", target, None), self.timeout
        )
        try:
            if status >= 400:
                raise ApiError(status, _error_message(await reader.read(65536)))
            while True:
                line = await reader.readline()
                if not line:
                    return
                yield line.rstrip(b"\n")
        finally:
            writer.close()


def wire_error_message(exc: WireError) -> str:
    """A one-line description of a malformed answer."""
    return f"malformed answer from the engine: {exc}"
