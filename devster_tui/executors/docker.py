"""The Docker layer: exec into a container, run one from an image, or build an image.

Why this shape: every Docker SDK call blocks, so each runs in a worker thread and the event
loop only ever touches the hijacked stream socket (non-blocking, ``add_reader``), where the
8-byte frame headers of Docker's multiplexed stream are removed and stdout and stderr come
apart.  The process inside runs under :data:`~devster_tui.executors.chain.WRAPPER`, so a
stop reaches its whole process group (Docker cannot signal an exec) and a dropped stream
(devster died) ends it.  A daemon that is down, or a container that is missing, is a
*waiting* state reported through the notice sink and retried until it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from devster_tui.config.schema import DockerLayer
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
    wrap_argv,
)

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024
"""Bytes asked for per read of a stream socket."""

RETRY_MAX = 5.0
"""Longest pause between two attempts while the daemon or the container is missing."""

_HIGH_WATER = 256 * 1024


class Waiting(Exception):
    """The daemon is down or the container is missing: retry later (``str`` says why)."""


def _client(host: str | None) -> Any:
    import docker

    base = host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    return docker.APIClient(base_url=base, version="1.41", timeout=60)


def _classify(exc: BaseException, what: str) -> BaseException:
    """Turn an SDK error into :class:`Waiting` (retry) or :class:`SpawnError` (give up)."""
    import docker.errors
    import requests.exceptions

    if isinstance(exc, docker.errors.NotFound):
        return Waiting(f"{what}: not found")
    if isinstance(exc, docker.errors.APIError):
        text = str(exc.explanation or exc)
        if exc.status_code == 409 and "not running" in text:
            return Waiting(f"{what}: not running")
        return SpawnError(f"docker: {text}")
    if isinstance(exc, requests.exceptions.ConnectionError | docker.errors.DockerException):
        return Waiting(f"docker daemon unavailable: {_short(exc)}")
    if isinstance(exc, OSError):
        return Waiting(f"docker daemon unavailable: {exc.strerror or exc}")
    return exc


def _short(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("Connection refused", "No such file or directory", "Connection aborted"):
        if marker in text:
            return marker
    return text[:200]


class DockerStream:
    """A hijacked Docker stream socket: demultiplexed output in, frames out (a ``Channel``)."""

    def __init__(
        self,
        sock: Any,
        on_data: Callable[[int, bytes], None],
        on_closed: Callable[[], None],
        *,
        multiplexed: bool = True,
    ) -> None:
        """Take over ``sock`` (the object the SDK returned; its raw socket is used).

        Args:
            sock: The SDK's socket object.
            on_data: Called with ``(stream_type, payload)``: 1 stdout, 2 stderr.
            on_closed: Called once when the far side closed the stream.
            multiplexed: False for a tty stream (no frame headers; everything is stdout).
        """
        self._loop = asyncio.get_running_loop()
        self._keep = sock
        raw = getattr(sock, "_sock", sock)
        self._sock: socket.socket = raw
        self._fd = raw.fileno()
        raw.setblocking(False)
        self._on_data = on_data
        self._on_closed = on_closed
        self._multiplexed = multiplexed
        self._buf = bytearray()
        self._out = bytearray()
        self._writing = False
        self._eof_pending = False
        self._closed = False
        self._drained = asyncio.Event()
        self._drained.set()
        self._loop.add_reader(self._fd, self._readable)

    # -- reading ------------------------------------------------------------------------

    def _readable(self) -> None:
        try:
            data = self._sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._finish()
            return
        if not self._multiplexed:
            self._on_data(1, data)
            return
        buf = self._buf
        buf += data
        pos = 0
        end = len(buf)
        while end - pos >= 8:
            size = int.from_bytes(buf[pos + 4 : pos + 8], "big")
            if end - pos - 8 < size:
                break
            kind = buf[pos]
            if size:
                self._on_data(kind, bytes(buf[pos + 8 : pos + 8 + size]))
            pos += 8 + size
        if pos:
            del buf[:pos]

    def _finish(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._fd)
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False
        self._drained.set()
        with contextlib.suppress(OSError):
            self._sock.close()
        self._on_closed()

    # -- Channel protocol --------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the process's stdin."""
        if self._closed or self._eof_pending:
            return
        self._out += data
        self._flush()

    def _flush(self) -> None:
        while self._out and not self._closed:
            try:
                sent = self._sock.send(self._out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._out.clear()
                break
            del self._out[:sent]
        if self._out and not self._closed:
            if not self._writing:
                self._writing = True
                self._loop.add_writer(self._fd, self._flush)
            if len(self._out) > _HIGH_WATER:
                self._drained.clear()
            return
        if self._writing:
            self._writing = False
            self._loop.remove_writer(self._fd)
        self._drained.set()
        if self._eof_pending and not self._closed:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_WR)

    async def drain(self) -> None:
        """Wait while more than 256 KiB are queued."""
        await self._drained.wait()

    def write_eof(self) -> None:
        """Half-close once the queue is written: the process reads end of file."""
        if self._closed or self._eof_pending:
            return
        self._eof_pending = True
        self._flush()

    def abort(self) -> None:
        """Close the socket now."""
        self._finish()


async def _retrying(
    attempt: Callable[[], Any],
    *,
    task: str,
    notice: NoticeSink | None,
    first_delay: float = 0.25,
) -> Any:
    """Run the blocking ``attempt`` in a thread until it does not raise :class:`Waiting`."""
    delay = first_delay
    last = ""
    while True:
        try:
            return await asyncio.to_thread(attempt)
        except Waiting as exc:
            text = str(exc)
            if text != last and notice is not None:
                notice(task, "waiting", text)
            last = text
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)


class DockerExecutor:
    """Runs tasks in Docker as configured by one :class:`DockerLayer` (the outermost layer)."""

    def __init__(
        self,
        layer: DockerLayer,
        *,
        project: str = "devster",
        root: Path | None = None,
        notice: NoticeSink | None = None,
    ) -> None:
        """Create the executor (no connection is made until the first spawn).

        Args:
            layer: What to do: exec (``container`` or ``labels``), run (``image``), build.
            project: Project name, for instance keys and container labels.
            root: Project directory (build contexts are relative to it).
            notice: Told about waiting states (daemon down, container missing).
        """
        self.layer = layer
        """The layer configuration."""
        self._project = project
        self._root = root or Path.cwd()
        self._notice = notice
        self._api: Any = None
        self._lock = threading.Lock()

    def _client(self) -> Any:
        with self._lock:
            if self._api is None:
                self._api = _client(self.layer.host)
            return self._api

    async def aclose(self) -> None:
        """Close the Docker API client's connections, if a spawn made one (idempotent)."""
        with self._lock:
            api, self._api = self._api, None
        if api is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(api.close)

    async def spawn(
        self, spec: ProcessSpec, on_output: OutputSink, on_eof: EofSink
    ) -> FramedProcess | BuildProcess:
        """Start ``spec`` in Docker, waiting (with notices) while the daemon or container is
        missing.

        Raises:
            SpawnError: for errors that waiting cannot fix (a bad image reference ...).
        """
        layer = self.layer
        if layer.build is not None and not spec.argv:
            return await BuildProcess.start(self, spec, on_output, on_eof)
        if not spec.argv:
            raise SpawnError("empty command", errno.ENOENT)
        if layer.image is not None:
            return await self._run(spec, on_output, on_eof)
        return await self._exec(spec, on_output, on_eof)

    # -- exec ---------------------------------------------------------------------------

    def find_container(self) -> str:
        """The id (or name) of the container to exec into.

        Raises:
            Waiting: when no running container matches.
        """
        layer = self.layer
        api = self._client()
        try:
            if layer.container is not None:
                info = api.inspect_container(layer.container)
                if not info.get("State", {}).get("Running"):
                    raise Waiting(f"container {layer.container}: not running")
                return str(info["Id"])
            filters = {"label": [f"{k}={v}" for k, v in layer.labels.items()], "status": "running"}
            found = api.containers(filters=filters)
        except Waiting:
            raise
        except Exception as exc:
            raise _classify(exc, f"container {layer.container or layer.labels}") from None
        if not found:
            wanted = ",".join(f"{k}={v}" for k, v in layer.labels.items())
            raise Waiting(f"no running container with labels {wanted}")
        newest = max(found, key=lambda c: c.get("Created", 0))
        return str(newest["Id"])

    async def _exec(
        self, spec: ProcessSpec, on_output: OutputSink, on_eof: EofSink
    ) -> FramedProcess:
        layer = self.layer
        argv = wrap_argv(spec, key=instance_key(self._project, spec.task), cwd=layer.workdir or "")

        def attempt() -> tuple[str, str, Any]:
            container = self.find_container()
            api = self._client()
            try:
                created = api.exec_create(
                    container,
                    argv,
                    stdin=True,
                    stdout=True,
                    stderr=True,
                    tty=layer.tty,
                    user=layer.user or "",
                )
                sock = api.exec_start(created["Id"], socket=True, tty=layer.tty)
            except Exception as exc:
                raise _classify(exc, f"container {layer.container or container[:12]}") from None
            return container, str(created["Id"]), sock

        container, exec_id, sock = await _retrying(attempt, task=spec.task, notice=self._notice)
        env = {**{k: str(v) for k, v in layer.env.items()}, **spec.env}

        def status() -> ExitStatus:
            return self._exec_status(exec_id, container)

        return await self._started(spec, self._attach(spec, sock, env, status, on_output, on_eof))

    def _exec_status(self, exec_id: str, container: str) -> ExitStatus:
        import docker.errors

        api = self._client()
        for _ in range(50):
            try:
                info = api.exec_inspect(exec_id)
            except docker.errors.NotFound:
                return ExitStatus(None, 9, reason="container removed")
            except Exception as exc:
                return ExitStatus(255, None, reason=str(_classify(exc, "exec")))
            if not info.get("Running"):
                code = info.get("ExitCode")
                status = decode_exit(code if isinstance(code, int) else None)
                state = self._container_state(container)
                for _ in range(20):  # ``docker rm -f`` kills first, removes a moment later
                    if state == "removed" or (state == "running" and status.signal != 9):
                        break
                    threading.Event().wait(0.05)
                    state = self._container_state(container)
                if state in ("stopped", "removed"):
                    return ExitStatus(status.code, status.signal, reason=f"container {state}")
                return status
            threading.Event().wait(0.02)
        return ExitStatus(255, None, reason="no exit status from docker")

    def _container_state(self, container: str) -> str:
        """``running``, ``stopped``, ``removed`` or ``unknown``."""
        import docker.errors

        try:
            info = self._client().inspect_container(container)
        except docker.errors.NotFound:
            return "removed"
        except Exception:
            return "unknown"
        return "running" if info.get("State", {}).get("Running") else "stopped"

    def _attach(
        self,
        spec: ProcessSpec,
        sock: Any,
        env: Mapping[str, str],
        status: Callable[[], ExitStatus],
        on_output: OutputSink,
        on_eof: EofSink,
    ) -> FramedProcess:
        holder: list[FramedProcess] = []
        loop = asyncio.get_running_loop()

        def on_data(kind: int, payload: bytes) -> None:
            holder[0].feed("stderr" if kind == 2 else "stdout", payload)

        def on_closed() -> None:
            proc = holder[0]
            proc.feed_eof()

            async def settle() -> None:
                proc.set_exit(await asyncio.to_thread(status))

            task = loop.create_task(settle())
            _background.add(task)
            task.add_done_callback(_background.discard)

        stream = DockerStream(sock, on_data, on_closed, multiplexed=not self.layer.tty)
        proc = FramedProcess(spec, stream, on_output, on_eof, handshake=True)
        holder.append(proc)
        stream.write(env_frames(env, handshake=True))
        return proc

    # -- run ----------------------------------------------------------------------------

    async def _run(
        self, spec: ProcessSpec, on_output: OutputSink, on_eof: EofSink
    ) -> FramedProcess:
        layer = self.layer
        argv = wrap_argv(spec, key="", cwd="")
        name = layer.name
        labels = {**layer.labels, "devster.project": self._project, "devster.task": spec.task}

        def attempt() -> tuple[str, Any]:
            api = self._client()
            try:
                if name is not None:
                    with contextlib.suppress(Exception):
                        api.remove_container(name, force=True)  # a leftover instance
                host_config = api.create_host_config(
                    port_bindings=_port_bindings(layer.ports),
                    binds=list(layer.volumes) or None,
                    network_mode=layer.network,
                    auto_remove=False,
                )
                created = api.create_container(
                    layer.image,
                    command=argv,
                    stdin_open=True,  # the SDK sets StdinOnce with it: EOF reaches the wrapper
                    tty=layer.tty,
                    environment={k: str(v) for k, v in layer.env.items()},
                    working_dir=layer.workdir,
                    user=layer.user,
                    name=name,
                    labels=labels,
                    host_config=host_config,
                    ports=[p.rpartition(":")[2] for p in layer.ports] or None,
                )
                cid = str(created["Id"])
                sock = api.attach_socket(
                    cid, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
                )
                api.start(cid)
            except Exception as exc:
                raise _classify(exc, f"image {layer.image}") from None
            return cid, sock

        cid, sock = await _retrying(attempt, task=spec.task, notice=self._notice)

        def status() -> ExitStatus:
            return self._run_status(cid)

        proc = self._attach(spec, sock, dict(spec.env), status, on_output, on_eof)
        return await self._started(spec, proc)

    @staticmethod
    async def _started(spec: ProcessSpec, proc: FramedProcess) -> FramedProcess:
        """Wait for the wrapper's start report; a missing command is a spawn error.

        Raises:
            SpawnError: ``not found: NAME``, ``permission denied: NAME``...
        """
        try:
            error = handshake_error(await proc.handshake(), spec)
        except BaseException:
            proc.abandon()
            raise
        if error is not None:
            raise error
        return proc

    def _run_status(self, cid: str) -> ExitStatus:
        import docker.errors

        api = self._client()
        try:
            result = api.wait(cid, timeout=30)
            code = result.get("StatusCode")
            status = decode_exit(code if isinstance(code, int) else None)
        except docker.errors.NotFound:
            return ExitStatus(None, 9, reason="container removed")
        except Exception as exc:
            status = ExitStatus(255, None, reason=str(_classify(exc, "container")))
        if self.layer.remove:
            with contextlib.suppress(Exception):
                api.remove_container(cid, force=True)
        return status


def _port_bindings(ports: list[str]) -> dict[str, Any] | None:
    if not ports:
        return None
    out: dict[str, Any] = {}
    for item in ports:
        host, _, container = item.rpartition(":")
        if ":" in host:
            ip, _, hport = host.rpartition(":")
            out[container] = (ip, int(hport))
        else:
            out[container] = int(host) if host else None
    return out


_background: set[asyncio.Task[None]] = set()


class BuildProcess:
    """``docker build`` as a job: the build log is stdout, an error is stderr and exit 1."""

    def __init__(self, on_output: OutputSink, on_eof: EofSink) -> None:
        """Prepare; :meth:`start` runs the build."""
        self._loop = asyncio.get_running_loop()
        self._on_output = on_output
        self._on_eof = on_eof
        self._cancel = threading.Event()
        self._done: asyncio.Future[ExitStatus] = self._loop.create_future()
        self.stop_requested = False
        """True once :meth:`stop` was called."""

    @classmethod
    async def start(
        cls, executor: DockerExecutor, spec: ProcessSpec, on_output: OutputSink, on_eof: EofSink
    ) -> BuildProcess:
        """Start building the layer's image in a worker thread."""
        proc = cls(on_output, on_eof)
        build = executor.layer.build
        assert build is not None
        context = str((executor._root / build.context).resolve())
        loop = proc._loop

        def emit(stream: Stream, data: bytes) -> None:
            loop.call_soon_threadsafe(proc._emit, stream, data)

        def work() -> ExitStatus:
            try:
                api = executor._client()
                for item in api.build(
                    path=context,
                    tag=build.tag,
                    dockerfile=build.dockerfile,
                    buildargs={k: str(v) for k, v in build.args.items()} or None,
                    target=build.target,
                    decode=True,
                    rm=True,
                ):
                    if proc._cancel.is_set():
                        return ExitStatus(None, 15)
                    if "stream" in item:
                        emit("stdout", str(item["stream"]).encode())
                    if "error" in item:
                        emit("stderr", (str(item["error"]).rstrip("\n") + "\n").encode())
                        return ExitStatus(1, None)
                return ExitStatus(0, None)
            except Exception as exc:
                emit("stderr", f"docker build: {_classify(exc, 'build')}\n".encode())
                return ExitStatus(1, None)

        async def run() -> None:
            status = await asyncio.to_thread(work)
            on_eof("stdout")
            on_eof("stderr")
            if not proc._done.done():
                proc._done.set_result(status)

        task = loop.create_task(run())
        _background.add(task)
        task.add_done_callback(_background.discard)
        return proc

    def _emit(self, stream: Stream, data: bytes) -> None:
        if not self._done.done():
            self._on_output(stream, data)

    @property
    def pid(self) -> int | None:
        """None: the build runs in the daemon."""
        return None

    @property
    def pgid(self) -> int | None:
        """None: the build runs in the daemon."""
        return None

    async def wait(self) -> ExitStatus:
        """Wait for the build to end."""
        return await asyncio.shield(self._done)

    def send_signal(self, signum: int) -> None:
        """Any signal abandons the build at its next log line."""
        self._cancel.set()

    async def stop(self, signum: int, grace: float) -> ExitStatus:
        """Abandon the build (the daemon finishes the current step on its own)."""
        self.stop_requested = True
        self._cancel.set()
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(self._done), max(grace, 0.1))
        if not self._done.done():
            self._done.set_result(ExitStatus(None, signum))
        return self._done.result()

    async def write_stdin(self, data: bytes) -> None:
        """A build reads no stdin.

        Raises:
            BrokenPipeError: always.
        """
        raise BrokenPipeError("a docker build reads no stdin")

    def close_stdin(self) -> None:
        """Nothing to close."""

    def pause_output(self) -> None:
        """A no-op: the build log comes from the daemon's API and the build is never slowed
        (a blocking pipe's consumer buffer holds it)."""

    def resume_output(self) -> None:
        """A no-op (see :meth:`pause_output`)."""
