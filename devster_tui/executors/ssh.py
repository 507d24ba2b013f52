"""The ssh layer: run tasks on remote hosts over pooled asyncssh connections.

Why this shape: one connection per host serves many tasks (each task is one session), and
a connection takes at most ``max_sessions`` sessions (the server's ``MaxSessions``), so
more tasks open more connections instead of failing.  Host keys are checked against
known_hosts by default; an unknown or changed key fails hard and names the host and the
key's fingerprint.  Consecutive ssh layers become jump hosts (asyncssh tunnels), so argv is
quoted exactly once, for the shell of the last host, one element at a time.  The remote
command runs under :data:`~devster_tui.executors.chain.WRAPPER`, in its own process group
that ends when the channel closes (stop, dropped link, devster killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from devster_tui.config.schema import SshLayer
from devster_tui.executors.base import (
    EofSink,
    ExitStatus,
    OutputSink,
    ProcessSpec,
    SpawnError,
    Stream,
)
from devster_tui.executors.chain import (
    FramedProcess,
    NoticeSink,
    decode_exit,
    env_frames,
    handshake_error,
    instance_key,
    quote_argv,
    wrap_argv,
)

WINDOW = 4 * 1024 * 1024
"""Channel receive window: a bulk producer (a log flood) never waits for window updates."""

PACKET = 256 * 1024
"""Largest packet asked for on a channel."""

CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
)
"""Ciphers offered, in order of preference: AES-GCM first (AES-NI in OpenSSL: about six times
less CPU per packet than asyncssh's chacha20-poly1305, which OpenSSH prefers), then the
usual defaults for servers without it."""

HostResolver = Callable[[str], SshLayer | None]
"""Looks up a jump host name in the inventory (None: not an inventory name)."""


class HostKeyError(SpawnError):
    """A host key is unknown or changed (never retried)."""


class _Waiting(Exception):
    """The host cannot be reached right now (retry with backoff)."""


def parse_jump(text: str, template: SshLayer) -> SshLayer:
    """``[user@]host[:port]`` as a layer that inherits ``template``'s key checking.

    Args:
        text: The jump host as written.
        template: The layer whose known_hosts and policy the jump host uses.
    """
    user, _, rest = text.rpartition("@")
    host, port = rest, None
    if rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
        port = int(port_text)
    return SshLayer(
        host=host,
        user=user or None,
        port=port,
        known_hosts=template.known_hosts,
        host_key_check=template.host_key_check,
        identity=template.identity,
        agent=template.agent,
        use_ssh_config=template.use_ssh_config,
        keepalive=template.keepalive,
        connect_timeout=template.connect_timeout,
    )


def _known_hosts_path(layer: SshLayer) -> str:
    return os.path.expanduser(layer.known_hosts or "~/.ssh/known_hosts")


def _client_class() -> Any:
    import asyncssh

    class Client(asyncssh.SSHClient):
        """Records why a host key was refused; remembers new keys for ``accept-new``."""

        def __init__(self, layer: SshLayer, known: asyncssh.SSHKnownHosts) -> None:
            self.layer = layer
            self.known = known
            self.refusal: str | None = None

        def validate_host_public_key(
            self, host: str, addr: str, port: int, key: asyncssh.SSHKey
        ) -> bool:
            fingerprint = key.get_fingerprint()
            where = host if port == 22 else f"{host}:{port}"
            known_keys = self.known.match(host, addr, port)[0]
            if known_keys:
                self.refusal = (
                    f"host key of {where} CHANGED: the server offered {key.get_algorithm()} "
                    f"{fingerprint}, which is not in {_known_hosts_path(self.layer)} "
                    "(possible man-in-the-middle; fix known_hosts if the change is expected)"
                )
                return False
            if self.layer.host_key_check == "accept-new":
                entry = host if port == 22 else f"[{host}]:{port}"
                line = f"{entry} {key.export_public_key('openssh').decode().strip()}\n"
                path = _known_hosts_path(self.layer)
                _append_known_host(path, line)
                return True
            self.refusal = (
                f"host key of {where} is unknown: {key.get_algorithm()} {fingerprint} is not "
                f"in {_known_hosts_path(self.layer)} (add it with ssh-keyscan after checking "
                "it, or set host_key_check: accept-new)"
            )
            return False

    return Client


def _append_known_host(path: str, line: str) -> None:
    """Remember a new host key the way OpenSSH does: ``~/.ssh`` 0700, the file 0600."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(line)


@dataclass
class _Conn:
    conn: Any
    sessions: int = 0
    lost: bool = False


class SshPool:
    """Shared ssh connections, keyed by the whole hop chain, with per-connection session caps."""

    def __init__(
        self, *, notice: NoticeSink | None = None, resolve: HostResolver | None = None
    ) -> None:
        """Create an empty pool.

        Args:
            notice: Told about warnings (host key checking off) and link states.
            resolve: Looks up jump host names in the host inventory.
        """
        self._notice = notice
        self._resolve = resolve
        self._conns: dict[tuple[Any, ...], list[_Conn]] = {}
        self._lock = asyncio.Lock()

    @staticmethod
    def _key(hops: Sequence[SshLayer]) -> tuple[Any, ...]:
        return tuple((h.host, h.port, h.user, str(h.identity), str(h.jump)) for h in hops)

    def _hops(self, chain: Sequence[SshLayer]) -> list[SshLayer]:
        """Expand each layer's ``jump`` setting into hops before it."""
        hops: list[SshLayer] = []
        for layer in chain:
            jumps = [layer.jump] if isinstance(layer.jump, str) else list(layer.jump or [])
            for jump in jumps:
                found = self._resolve(jump) if self._resolve is not None else None
                hops.append(found if found is not None else parse_jump(jump, layer))
            hops.append(layer.model_copy(update={"jump": None}))
        return hops

    async def acquire(self, chain: Sequence[SshLayer], task: str) -> _Conn:
        """A connection to the last hop of ``chain`` with a free session slot (one is taken).

        Raises:
            HostKeyError: an unknown or changed host key.
            SpawnError: authentication failed.
            _Waiting: the host cannot be reached now.
        """
        hops = self._hops(chain)
        async with self._lock:
            return await self._acquire(hops, task)

    async def _acquire(self, hops: list[SshLayer], task: str) -> _Conn:
        key = self._key(hops)
        entries = [c for c in self._conns.get(key, []) if not c.lost]
        self._conns[key] = entries
        target = hops[-1]
        for entry in entries:
            if entry.sessions < target.max_sessions:
                entry.sessions += 1
                return entry
        tunnel = None
        if len(hops) > 1:
            outer = await self._acquire(hops[:-1], task)
            outer.sessions -= 1  # a tunnel uses direct-tcpip channels, not sessions
            tunnel = outer.conn
        conn = await self._connect(target, tunnel, task)
        entry = _Conn(conn, sessions=1)
        entries.append(entry)

        def lost() -> None:
            entry.lost = True

        _on_close(conn, lost)
        return entry

    def release(self, entry: _Conn) -> None:
        """Give a session slot back."""
        entry.sessions = max(0, entry.sessions - 1)

    async def _connect(self, layer: SshLayer, tunnel: Any, task: str) -> Any:
        import asyncssh

        if layer.host_key_check == "off" and self._notice is not None:
            self._notice(
                task, "warning", f"host key checking is OFF for {layer.host} (host_key_check)"
            )
        known, client_keys = await asyncio.to_thread(_load_files, layer)
        client_cls = _client_class()
        holder: list[Any] = []

        def factory() -> Any:
            client = client_cls(layer, known or asyncssh.import_known_hosts(""))
            holder.append(client)
            return client

        options: dict[str, Any] = {
            "known_hosts": known,
            "client_factory": factory,
            "keepalive_interval": layer.keepalive,
            "keepalive_count_max": 3,
            "agent_forwarding": layer.agent_forwarding,
            "connect_timeout": layer.connect_timeout,
            "encryption_algs": list(CIPHERS),
            "compression_algs": ["none"],
        }
        if layer.port is not None:
            options["port"] = layer.port
        if layer.user is not None:
            options["username"] = layer.user
        if client_keys is not None:
            options["client_keys"] = client_keys
        if layer.passphrase is not None:
            options["passphrase"] = layer.passphrase
        if not layer.agent:
            options["agent_path"] = None
        if not layer.use_ssh_config:
            options["config"] = None
        if tunnel is not None:
            options["tunnel"] = tunnel
        try:
            return await asyncssh.connect(layer.host, **options)
        except asyncssh.HostKeyNotVerifiable as exc:
            refusal = holder[0].refusal if holder and holder[0].refusal else str(exc)
            raise HostKeyError(f"ssh {layer.host}: {refusal}") from None
        except asyncssh.PermissionDenied as exc:
            raise SpawnError(f"ssh {layer.host}: authentication failed ({exc.reason})") from None
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            text = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
            raise _Waiting(f"ssh {layer.host}: {text or type(exc).__name__}") from None

    async def aclose(self) -> None:
        """Close every connection."""
        for entries in self._conns.values():
            for entry in entries:
                entry.conn.close()
        for entries in self._conns.values():
            for entry in entries:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(entry.conn.wait_closed(), 2.0)
        self._conns.clear()

    def connections(self) -> int:
        """Open connections (for tests and status)."""
        return sum(1 for entries in self._conns.values() for c in entries if not c.lost)


def _load_files(layer: SshLayer) -> tuple[Any, list[str] | None]:
    """known_hosts (None when checking is off) and identity paths (blocking file access)."""
    import asyncssh

    known: Any = None
    if layer.host_key_check != "off":
        path = _known_hosts_path(layer)
        known = (
            asyncssh.read_known_hosts(path)
            if os.path.exists(path)
            else asyncssh.import_known_hosts("")
        )
    keys: list[str] | None = None
    if layer.identity is not None:
        ids = [layer.identity] if isinstance(layer.identity, str) else layer.identity
        keys = [os.path.expanduser(i) for i in ids]
    return known, keys


def _on_close(conn: Any, fn: Callable[[], None]) -> None:
    async def watch() -> None:
        with contextlib.suppress(Exception):
            await conn.wait_closed()
        fn()

    task = asyncio.get_running_loop().create_task(watch())
    _watchers.add(task)
    task.add_done_callback(_watchers.discard)


_watchers: set[asyncio.Task[None]] = set()


def _session_class() -> Any:
    import asyncssh

    class Session(asyncssh.SSHClientSession[bytes]):
        """Feeds one channel's output and exit into a :class:`FramedProcess`."""

        def __init__(self) -> None:
            self.proc: FramedProcess | None = None
            self.code: int | None = None
            self.signal: str | None = None
            self.pending: list[tuple[Any, bytes]] = []
            self.chan: Any = None
            self.reasons: Mapping[str, ExitStatus] = {}
            self.resumed = asyncio.Event()
            self.resumed.set()

        def data_received(self, data: bytes, datatype: Any) -> None:
            stream: Stream = "stderr" if datatype == asyncssh.EXTENDED_DATA_STDERR else "stdout"
            if self.proc is None:
                self.pending.append((stream, data))
            else:
                self.proc.feed(stream, data)

        def exit_status_received(self, status: int) -> None:
            self.code = status

        def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
            self.signal = signal

        def pause_writing(self) -> None:
            self.resumed.clear()

        def resume_writing(self) -> None:
            self.resumed.set()

        def connection_lost(self, exc: Exception | None) -> None:
            self.resumed.set()
            proc = self.proc
            if proc is None:
                return
            if self.code is None and self.signal is None:
                proc.set_lost("disconnected")
            elif self.signal is not None and self.signal.removeprefix("SIG") in self.reasons:
                proc.set_exit(self.reasons[self.signal.removeprefix("SIG")])
            else:
                proc.set_exit(decode_exit(self.code, self.signal))

    return Session


class _SshChannel:
    """Adapts an asyncssh channel to the ``Channel`` protocol."""

    def __init__(self, chan: Any, session: Any) -> None:
        self._chan = chan
        self._session = session

    def write(self, data: bytes) -> None:
        with contextlib.suppress(Exception):
            self._chan.write(data)

    async def drain(self) -> None:
        await self._session.resumed.wait()

    def write_eof(self) -> None:
        with contextlib.suppress(Exception):
            self._chan.write_eof()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._chan.abort()


class SshExecutor:
    """Runs tasks at the end of a chain of ssh hops, wrapping ``inner`` argv prefixes.

    ``inner`` turns the wrapped argv into the argv actually run on the last host (e.g.
    ``docker exec -i CONTAINER ...`` for a docker layer after the ssh hops).
    """

    def __init__(
        self,
        hops: Sequence[SshLayer],
        pool: SshPool,
        *,
        project: str = "devster",
        inner: Callable[[list[str]], list[str]] = lambda argv: argv,
        cwd: str = "",
        notice: NoticeSink | None = None,
        signal_reasons: Mapping[str, ExitStatus] | None = None,
    ) -> None:
        """Create the executor.

        Args:
            hops: The ssh layers, outermost first (all but the last are jump hosts).
            pool: Shared connections.
            project: Project name, for instance keys.
            inner: Wraps the remote argv for layers after the ssh hops.
            cwd: Working directory on the far side (empty: the default).
            notice: Told about waiting states.
            signal_reasons: Exit signals of the remote command (``USR2``...) that stand for
                another exit status (``container removed``): set by the remote exec guard.
        """
        self.hops = list(hops)
        """The hop chain."""
        self._pool = pool
        self._project = project
        self._inner = inner
        self._cwd = cwd
        self._notice = notice
        self._signal_reasons = dict(signal_reasons or {})

    async def aclose(self) -> None:
        """Release nothing: the connections belong to the shared :class:`SshPool`, which
        its maker (the engine's layer router) closes once every task has stopped."""

    def command(self, spec: ProcessSpec) -> str:
        """The remote command line for ``spec`` (each argv element quoted on its own)."""
        argv = self._inner(
            wrap_argv(spec, key=instance_key(self._project, spec.task), cwd=self._cwd)
        )
        return "exec " + quote_argv(argv)

    async def spawn(self, spec: ProcessSpec, on_output: OutputSink, on_eof: EofSink) -> Any:
        """Start ``spec`` on the last host, waiting (with notices) while it is unreachable.

        Raises:
            SpawnError: an unknown or changed host key, or failed authentication.
        """
        if not spec.argv:
            raise SpawnError("empty command")
        delay = 0.25
        last = ""
        while True:
            try:
                return await self._spawn_once(spec, on_output, on_eof)
            except _Waiting as exc:
                text = str(exc)
                if self._notice is not None and text != last:
                    self._notice(spec.task, "waiting", text)
                last = text
                if not self.hops[-1].reconnect:
                    raise SpawnError(text) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _spawn_once(self, spec: ProcessSpec, on_output: OutputSink, on_eof: EofSink) -> Any:
        import asyncssh

        entry = await self._pool.acquire(self.hops, spec.task)
        command = self.command(spec)
        try:
            chan, session = await entry.conn.create_session(
                _session_class(), command, encoding=None, window=WINDOW, max_pktsize=PACKET
            )
        except (asyncssh.ChannelOpenError, asyncssh.Error, OSError) as exc:
            self._pool.release(entry)
            entry.lost = entry.lost or isinstance(exc, OSError | asyncssh.ConnectionLost)
            raise _Waiting(f"ssh {self.hops[-1].host}: {exc}") from None
        proc = FramedProcess(spec, _SshChannel(chan, session), on_output, on_eof, handshake=True)
        session.reasons = self._signal_reasons
        session.proc = proc
        for stream, data in session.pending:
            proc.feed(stream, data)
        session.pending.clear()
        if chan.is_closing():
            session.connection_lost(None)
        chan.write(env_frames(dict(spec.env), handshake=True))
        pool = self._pool

        async def release() -> None:
            with contextlib.suppress(Exception):
                await proc.wait()
            pool.release(entry)

        task = asyncio.get_running_loop().create_task(release())
        _watchers.add(task)
        task.add_done_callback(_watchers.discard)
        try:
            error = handshake_error(await proc.handshake(), spec)
        except BaseException:
            chan.abort()
            raise
        if error is not None:
            raise error
        return proc


def inner_ssh_argv(layer: SshLayer, argv: list[str]) -> list[str]:
    """The OpenSSH client command that runs ``argv`` on ``layer``'s host from a remote hop.

    The remote command is one string for the far shell: each element quoted on its own.
    """
    cmd = ["ssh", "-T", "-o", "BatchMode=yes"]
    if layer.host_key_check == "accept-new":
        cmd += ["-o", "StrictHostKeyChecking=accept-new"]
    elif layer.host_key_check == "off":
        cmd += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    else:
        cmd += ["-o", "StrictHostKeyChecking=yes"]
    if layer.known_hosts:
        cmd += ["-o", f"UserKnownHostsFile={layer.known_hosts}"]
    if layer.port is not None:
        cmd += ["-p", str(layer.port)]
    ids = [layer.identity] if isinstance(layer.identity, str) else list(layer.identity or [])
    for identity in ids:
        cmd += ["-i", identity]
    target = f"{layer.user}@{layer.host}" if layer.user else layer.host
    return [*cmd, target, "--", "exec " + quote_argv(argv)]
