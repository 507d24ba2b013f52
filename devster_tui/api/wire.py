"""HTTP/1.1 framing shared by the API server and its clients (standard library only).

Why hand-written: the API needs a handful of routes, request caps and a streaming
response; a small parser keeps ``devster ps`` free of heavy imports (it must answer in
well under 200 ms) and lets the server bound header size, body size and read time itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    411: "Length Required",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}
"""Reason phrases of the status codes the server uses."""


class WireError(Exception):
    """A request or response that cannot be parsed (with the HTTP status to answer)."""

    def __init__(self, status: int, message: str) -> None:
        """Record the status to answer and the message for the client."""
        super().__init__(message)
        self.status = status
        """HTTP status code to answer with."""


@dataclass(slots=True)
class Request:
    """One parsed request head (and body)."""

    method: str
    """``GET``, ``POST`` ..."""
    path: str
    """Decoded path without the query."""
    query: dict[str, str]
    """Query parameters (last value wins)."""
    headers: dict[str, str]
    """Header names lower-cased."""
    version: str
    """``HTTP/1.1`` or ``HTTP/1.0``."""
    body: bytes = b""
    """The request body."""
    parts: list[str] = field(default_factory=list)
    """Path segments (``/v1/tasks/api/output`` -> ``["v1", "tasks", "api", "output"]``)."""

    @property
    def keep_alive(self) -> bool:
        """Whether the client wants the connection kept open after the response."""
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return conn == "keep-alive"
        return conn != "close"


def parse_head(data: bytes) -> Request:
    """Parse a request line and headers (``data`` ends with the blank line).

    Raises:
        WireError: for a malformed head.
    """
    try:
        text = data.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes everything
        raise WireError(400, "bad encoding") from None
    lines = text.split("\r\n")
    try:
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise WireError(400, "malformed request line") from None
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise WireError(400, "unsupported HTTP version")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise WireError(400, "malformed header")
        key = name.lower()
        if key in headers and key in ("host", "content-length", "authorization", "origin"):
            raise WireError(400, f"duplicate {name} header")
        headers[key] = value.strip()
    split = urlsplit(target)
    path = unquote(split.path)
    query = dict(parse_qsl(split.query, keep_blank_values=True))
    parts = [p for p in path.split("/") if p]
    return Request(method.upper(), path, query, headers, version, parts=parts)


def response_head(status: int, headers: dict[str, str]) -> bytes:
    """A response status line and headers, with the blank line."""
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"]
    lines.extend(f"{k}: {v}" for k, v in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def build_request(
    method: str,
    target: str,
    *,
    host: str = "localhost",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A complete client request (``Connection: close``: one request per connection)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    for key, value in (headers or {}).items():
        lines.append(f"{key}: {value}")
    if body is not None:
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def parse_response_head(data: bytes) -> tuple[int, dict[str, str]]:
    """Status code and lower-cased headers of a response head.

    Raises:
        WireError: for a malformed head.
    """
    lines = data.decode("latin-1").split("\r\n")
    try:
        _version, code, *_rest = lines[0].split(" ", 2)
        status = int(code)
    except ValueError:
        raise WireError(502, "malformed response") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return status, headers
