"""Health probes (exec, http, tcp, log line) and the monitor that turns them into verdicts.

Why separate from the runner: a probe is a small async function returning
``(ok, detail)``; :class:`HealthMonitor` applies ``interval``, ``timeout``, ``retries`` and
``start_period`` to any probe and reports only changes, so the runner emits one event per
verdict change rather than one per probe.  Every probe is non-blocking: http and tcp use
asyncio streams, exec runs through the task's executor.
"""

from __future__ import annotations

import asyncio
import re
import signal
import ssl
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

from devster_tui.config.schema import HealthCheck
from devster_tui.config.shell import shell_argv
from devster_tui.executors.base import Executor, ProcessSpec, SpawnError, Stream

ProbeFn = Callable[[], Awaitable[tuple[bool, str]]]
"""A probe: returns ``(ok, detail)``; it may raise, which counts as a failure."""

ResultFn = Callable[[bool, str, int], None]
"""Called with ``(healthy, detail, consecutive_failures)`` when the verdict changes."""


async def probe_tcp(target: str | int, limit: float) -> tuple[bool, str]:
    """Connect to ``target`` (a port on 127.0.0.1, or ``host:port``) and close again.

    Args:
        target: ``5432``, ``"5432"`` or ``"db.local:5432"``.
        limit: Seconds the connection may take.

    Returns:
        ``(ok, detail)``.
    """
    host, port = _split_host_port(target)
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), limit)
    except TimeoutError:
        return False, f"tcp {host}:{port}: no answer within {limit:g}s"
    except OSError as exc:
        return False, f"tcp {host}:{port}: {exc.strerror or exc}"
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), limit)
    except (OSError, TimeoutError):
        pass
    return True, f"tcp {host}:{port}: connected"


def _split_host_port(target: str | int) -> tuple[str, int]:
    text = str(target).strip()
    if text.isdigit():
        return "127.0.0.1", int(text)
    host, _, port = text.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"tcp target {text!r} is not PORT or HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


async def probe_http(url: str, limit: float) -> tuple[bool, str]:
    """GET ``url``; a 2xx or 3xx status is healthy.

    Args:
        url: ``http://`` or ``https://`` URL.
        limit: Seconds the whole exchange may take.

    Returns:
        ``(ok, detail)`` where detail names the status (``HTTP 200``) or the error.
    """
    try:
        return await asyncio.wait_for(_http_get(url), limit)
    except TimeoutError:
        return False, f"GET {url}: no answer within {limit:g}s"
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return False, f"GET {url}: {reason}"


async def _http_get(url: str) -> tuple[bool, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    context = ssl.create_default_context() if tls else None
    reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=context)
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        host = parts.netloc.rpartition("@")[2]
        writer.write(
            f"GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: devster-health\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n".encode("latin-1")
        )
        await writer.drain()
        status_line = await reader.readline()
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
    fields = status_line.decode("latin-1", "replace").split()
    if len(fields) < 2 or not fields[1].isdigit():
        return False, f"GET {url}: not an HTTP answer"
    code = int(fields[1])
    return 200 <= code < 400, f"HTTP {code}"


async def probe_exec(executor: Executor, spec: ProcessSpec, limit: float) -> tuple[bool, str]:
    """Run a probe command through ``executor``; exit 0 is healthy.

    Args:
        executor: The task's executor (so the probe runs where the task runs).
        spec: What to run.
        limit: Seconds the probe may take; it is killed after that.

    Returns:
        ``(ok, detail)``: ``exit 0`` or ``exit 1: <last output line>``.
    """
    tail = bytearray()

    def on_output(_stream: Stream, chunk: bytes) -> None:
        tail.extend(chunk)
        del tail[:-512]

    try:
        proc = await executor.spawn(spec, on_output, lambda _s: None)
    except SpawnError as exc:
        return False, f"exec: {exc}"
    try:
        status = await asyncio.wait_for(proc.wait(), limit)
    except TimeoutError:
        await proc.stop(signal.SIGKILL, 0.0)
        return False, f"exec: no result within {limit:g}s"
    except BaseException:
        # Cancelled (the task stopped, the engine shuts down): the probe ends with its task,
        # not at its own timeout nor at ``devster down``.  A synchronous SIGKILL, because a
        # cancelled coroutine must not wait; the executor reaps it and ends what it forked.
        proc.send_signal(signal.SIGKILL)
        raise
    last = bytes(tail).rstrip(b"\n").rpartition(b"\n")[2].decode("utf-8", "replace")
    if status.code == 0:
        return True, "exit 0"
    summary = f"signal {status.signal_name}" if status.signal else f"exit {status.code}"
    return False, f"{summary}: {last}" if last else summary


def build_probe(
    check: HealthCheck,
    *,
    executor: Executor,
    task: str,
    env: Mapping[str, str],
    cwd: str,
    resolve: Callable[[str], str],
) -> ProbeFn | None:
    """The probe function for an exec/http/tcp check (None for a ``log`` check).

    Args:
        check: The configured check.
        executor: Executor for exec probes.
        task: Task name (for the probe's process records).
        env: Environment for exec probes.
        cwd: Working directory for exec probes.
        resolve: Applies ``${ports.NAME}`` substitution to a string.
    """
    timeout = check.timeout
    if check.exec is not None:
        cmd = check.exec
        argv = shell_argv(resolve(cmd)) if isinstance(cmd, str) else [resolve(a) for a in cmd]
        spec = ProcessSpec(task=f"{task}:health", argv=argv, env=dict(env), cwd=cwd)
        return lambda: probe_exec(executor, spec, timeout)
    if check.http is not None:
        url = resolve(check.http)
        return lambda: probe_http(url, timeout)
    if check.tcp is not None:
        target = resolve(str(check.tcp))
        return lambda: probe_tcp(target, timeout)
    return None


class HealthMonitor:
    """Runs one probe every ``interval`` and reports verdict changes.

    The first probe runs at once.  A success reports healthy; ``retries`` consecutive
    failures report unhealthy; failures within ``start_period`` of the start do not count.
    """

    def __init__(
        self,
        check: HealthCheck,
        probe: ProbeFn,
        on_result: ResultFn,
        monotonic: Callable[[], float],
    ) -> None:
        """Prepare a monitor.

        Args:
            check: Interval, retries and start period.
            probe: The probe to run.
            on_result: Receives verdict changes.
            monotonic: Clock reading for the start period.
        """
        self._check = check
        self._probe = probe
        self._on_result = on_result
        self._monotonic = monotonic
        self.healthy: bool | None = None
        """The current verdict (None until the first one)."""
        self.failures = 0
        """Consecutive counted failures."""

    async def run(self) -> None:
        """Probe until cancelled."""
        started = self._monotonic()
        while True:
            try:
                ok, detail = await self._probe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a probe bug is a failed probe, not a dead monitor
                ok, detail = False, f"probe error: {exc!r}"
            self.observe(ok, detail, self._monotonic() - started)
            await asyncio.sleep(self._check.interval)

    def observe(self, ok: bool, detail: str, elapsed: float) -> None:
        """Fold one probe result into the verdict (public for unit tests).

        Args:
            ok: The probe passed.
            detail: What it saw.
            elapsed: Seconds since the monitor started.
        """
        if ok:
            self.failures = 0
            if self.healthy is not True:
                self.healthy = True
                self._on_result(True, detail, 0)
            return
        if elapsed < self._check.start_period and self.healthy is not True:
            return
        self.failures += 1
        if self.failures >= self._check.retries and self.healthy is not False:
            self.healthy = False
            self._on_result(False, detail, self.failures)


def log_matcher(pattern: str) -> Callable[[bytes], bool]:
    """A predicate telling whether an output line matches ``pattern`` (a regex)."""
    regex = re.compile(pattern)

    def matches(line: bytes) -> bool:
        return regex.search(line.decode("utf-8", "replace")) is not None

    return matches
