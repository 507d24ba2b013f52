"""Compose an environment's layers into one executor; resume follow tasks after a dropped link.

Why this shape: the outermost layer decides the transport (local process, Docker SDK, or an
asyncssh connection through any leading ssh hops used as jump hosts); every later layer
only wraps the argv run at the far side (``docker exec -i C ...``, ``ssh host ...``), and
the innermost hop runs the wrapper.  Layers wrap executors; nothing subclasses a backend.
:class:`ResumingExecutor` wraps any executor so that a process whose link dropped is started
again with backoff (the wrapper ends the old instance first, so exactly one runs) and its
repeated lines are filtered out.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal as _signal
from collections.abc import Callable, Sequence
from pathlib import Path

from devster_tui.config.schema import DockerLayer, Layer, SshLayer
from devster_tui.executors.base import (
    EofSink,
    Executor,
    ExitStatus,
    OutputSink,
    Process,
    ProcessSpec,
    Stream,
)
from devster_tui.executors.chain import NoticeSink, ResumeFilter, quote_argv
from devster_tui.executors.ssh import SshExecutor, SshPool, inner_ssh_argv


def docker_argv(layer: DockerLayer, argv: list[str]) -> list[str]:
    """The docker CLI command that runs ``argv`` per ``layer`` on a remote hop."""
    opts = ["-i"]
    if layer.tty:
        opts.append("-t")
    if layer.user:
        opts += ["-u", layer.user]
    if layer.workdir:
        opts += ["-w", layer.workdir]
    if layer.image is not None:
        run = ["docker", "run", "--rm", *opts]
        if layer.name:
            run += ["--name", layer.name]
        for key, value in layer.labels.items():
            run += ["--label", f"{key}={value}"]
        for item in layer.ports:
            run += ["-p", item]
        for item in layer.volumes:
            run += ["-v", item]
        if layer.network:
            run += ["--network", layer.network]
        return [*run, layer.image, *argv]
    if layer.container is not None:
        return ["docker", "exec", *opts, layer.container, *argv]
    filters = " ".join(
        f"--filter label={quote_argv([f'{k}={v}'])}" for k, v in layer.labels.items()
    )
    finder = (
        f"c=$(docker ps -q {filters} | head -n 1); "
        '[ -n "$c" ] || { echo "devster: no running container with the labels" >&2; exit 125; }; '
        f'exec docker exec {" ".join(opts)} "$c" "$@"'
    )
    return ["sh", "-c", finder, "devster", *argv]


def _wrapper_for(layers: Sequence[Layer]) -> Callable[[list[str]], list[str]]:
    """Wrap argv for ``layers`` (outermost first), applied innermost first."""

    def wrap(argv: list[str]) -> list[str]:
        for layer in reversed(layers):
            if layer.docker is not None:
                argv = docker_argv(layer.docker, argv)
            elif layer.ssh is not None:
                argv = inner_ssh_argv(layer.ssh, argv)
        return argv

    return wrap


def build_executor(
    layers: Sequence[Layer],
    *,
    local: Executor,
    pool: SshPool | None,
    project: str,
    root: Path,
    notice: NoticeSink | None = None,
) -> Executor:
    """The executor that runs tasks through ``layers`` (outermost first).

    Args:
        layers: The environment's layers; ``local`` layers are no-ops.
        local: The local executor (used when no other layer remains).
        pool: Shared ssh connections (needed when a layer is ssh).
        project: Project name (instance keys, container labels).
        root: Project directory (docker build contexts).
        notice: Told about waiting/link states and warnings.

    Raises:
        ValueError: when a docker layer that is not the outermost builds an image.
    """
    chain = [layer for layer in layers if layer.local is None]
    if not chain:
        return local
    first = chain[0]
    if first.ssh is not None:
        hops: list[SshLayer] = []
        rest = list(chain)
        while rest and rest[0].ssh is not None:
            layer_ssh = rest.pop(0).ssh
            assert layer_ssh is not None
            hops.append(layer_ssh)
        _check_inner(rest)
        if pool is None:
            raise ValueError("an ssh layer needs a connection pool")
        return SshExecutor(hops, pool, project=project, inner=_wrapper_for(rest), notice=notice)
    from devster_tui.executors.docker import DockerExecutor

    assert first.docker is not None
    if len(chain) > 1:
        raise ValueError("a docker layer can only be followed by layers when it is not outermost")
    return DockerExecutor(first.docker, project=project, root=root, notice=notice)


def _check_inner(layers: Sequence[Layer]) -> None:
    for layer in layers:
        if layer.docker is not None and layer.docker.build is not None:
            raise ValueError("a docker build layer must be the outermost layer")


RESUMABLE = frozenset({"disconnected", "container removed", "container stopped"})
"""Exit reasons after which a resuming process starts again instead of ending."""


class ResumingExecutor:
    """Starts again a process whose link dropped (``ExitStatus.reason == 'disconnected'``),
    with backoff, filtering the lines the new instance repeats."""

    def __init__(
        self,
        inner: Executor,
        *,
        notice: NoticeSink | None = None,
        initial: float = 0.5,
        maximum: float = 30.0,
    ) -> None:
        """Wrap ``inner``.

        Args:
            inner: The executor whose processes may lose their link.
            notice: Told ``disconnected`` / ``connected``.
            initial: First pause before a reconnect.
            maximum: Longest pause.
        """
        self._inner = inner
        self._notice = notice
        self._initial = initial
        self._maximum = maximum

    async def spawn(self, spec: ProcessSpec, on_output: OutputSink, on_eof: EofSink) -> Process:
        """Start ``spec``; the returned process survives dropped links."""
        proc = ResumingProcess(self, spec, on_output, on_eof)
        await proc.first()
        return proc


class ResumingProcess:
    """One task across any number of reconnects (a ``Process``)."""

    def __init__(
        self, owner: ResumingExecutor, spec: ProcessSpec, on_output: OutputSink, on_eof: EofSink
    ) -> None:
        """Prepare; :meth:`first` starts the first instance."""
        self._owner = owner
        self._spec = spec
        self._on_eof = on_eof
        self._filter = ResumeFilter(on_output)
        self._current: Process | None = None
        self._stopping = False
        self._done: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        self._loop_task: asyncio.Task[None] | None = None
        self._eofs: set[Stream] = set()
        self._paused = False
        self.reconnects = 0
        """How many times the process was started again after a dropped link."""

    async def first(self) -> None:
        """Start the first instance (errors propagate like a plain spawn)."""
        self._current = await self._owner._inner.spawn(self._spec, self._filter, self._eofs.add)
        self._loop_task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        delay = self._owner._initial
        notice = self._owner._notice
        try:
            while True:
                current = self._current
                assert current is not None
                status = await current.wait()
                if self._stopping or status.reason not in RESUMABLE:
                    self._finish(status)
                    return
                if notice is not None:
                    notice(
                        self._spec.task, "disconnected", f"link lost; reconnecting in {delay:g}s"
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._owner._maximum)
                if self._stopping:
                    self._finish(ExitStatus(None, int(_signal.SIGTERM), reason="stopped"))
                    return
                self._eofs.clear()
                self._filter.resume()
                try:
                    self._current = await self._owner._inner.spawn(
                        self._spec, self._filter, self._eofs.add
                    )
                except Exception as exc:
                    self._finish(ExitStatus(255, None, reason=f"reconnect failed: {exc}"))
                    return
                if self._paused:
                    self._current.pause_output()
                self.reconnects += 1
                delay = self._owner._initial
                if notice is not None:
                    notice(self._spec.task, "connected", "link restored")
        except asyncio.CancelledError:
            self._finish(ExitStatus(None, int(_signal.SIGKILL), reason="cancelled"))
            raise

    def _finish(self, status: ExitStatus) -> None:
        self._on_eof("stdout")
        self._on_eof("stderr")
        if not self._done.done():
            self._done.set_result(status)

    @property
    def pid(self) -> int | None:
        """The current instance's pid (None when remote)."""
        return None if self._current is None else self._current.pid

    @property
    def pgid(self) -> int | None:
        """The current instance's process group (None when remote)."""
        return None if self._current is None else self._current.pgid

    async def wait(self) -> ExitStatus:
        """Wait for the end (not for a dropped link)."""
        return await asyncio.shield(self._done)

    def send_signal(self, signum: int) -> None:
        """Signal the current instance."""
        if self._current is not None:
            self._current.send_signal(signum)

    async def stop(self, signum: int, grace: float) -> ExitStatus:
        """Stop the current instance; no reconnect follows."""
        self._stopping = True
        current = self._current
        if current is not None:
            with contextlib.suppress(Exception):
                await current.stop(signum, grace)
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(self._done), 5.0)
        if self._loop_task is not None:
            self._loop_task.cancel()
        return await asyncio.shield(self._done)

    async def write_stdin(self, data: bytes) -> None:
        """Write to the current instance's stdin."""
        if self._current is None:
            raise BrokenPipeError("not started")
        await self._current.write_stdin(data)

    def close_stdin(self) -> None:
        """Close the current instance's stdin."""
        if self._current is not None:
            self._current.close_stdin()

    def pause_output(self) -> None:
        """Pause the current instance's output (and each instance after a reconnect)."""
        self._paused = True
        if self._current is not None:
            self._current.pause_output()

    def resume_output(self) -> None:
        """Resume the current instance's output."""
        self._paused = False
        if self._current is not None:
            self._current.resume_output()


def uses_layers(layers: Sequence[Layer]) -> bool:
    """Whether ``layers`` run anywhere but locally."""
    return any(layer.local is None for layer in layers)


def has_ssh(layers: Sequence[Layer]) -> bool:
    """Whether any layer is ssh."""
    return any(layer.ssh is not None for layer in layers)
