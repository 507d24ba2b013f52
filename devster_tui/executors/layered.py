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
    running = "docker inspect -f '{{if .State.Running}}{{.Id}}{{end}}'"
    if layer.container is not None:
        target = quote_argv([layer.container])
        find = f"{running} {target} 2>/dev/null"
        missing = f"printf 'devster: container %s is not running\\n' {target} >&2"
        check = find
    else:
        filters = " ".join(
            f"--filter label={quote_argv([f'{k}={v}'])}" for k, v in layer.labels.items()
        )
        find = f"docker ps -q --no-trunc {filters} | head -n 1"
        missing = "echo 'devster: no running container with the labels' >&2"
        check = f'{running} "$i" 2>/dev/null'
    guard = (
        f"i=$({find}) || i=\n"
        f'[ -n "$i" ] || {{ {missing}; kill -s {MISSING_SIGNAL} $$; exit 125; }}\n'
        f'docker exec {quote_argv(opts)} "$i" "$@"\n'
        "r=$? n=0\n"
        # ``docker rm -f`` kills the container's processes first and updates its state a
        # moment later: a SIGKILL (137) is checked again for up to 2 s.
        f'while [ "$({check})" = "$i" ]; do\n'
        '  [ "$r" = 137 ] && [ "$n" -lt 20 ] || exit "$r"\n'
        "  sleep 0.1; n=$((n+1))\n"
        "done\n"
        f"kill -s {GONE_SIGNAL} $$\n"
    )
    return ["sh", "-c", guard, "devster", *argv]


MISSING_SIGNAL = "USR1"
"""The remote exec guard ends itself with this signal when no container runs to exec into."""

GONE_SIGNAL = "USR2"
"""The remote exec guard ends itself with this signal when the container it exec'd into was
removed, stopped or replaced: the exec ended because of that, not on its own.  Only the guard
can end by a signal (``docker exec`` reports the task's signals as exit codes), so neither
signal is ever mistaken for the task's own exit."""

GUARD_REASONS: dict[str, ExitStatus] = {
    MISSING_SIGNAL: ExitStatus(255, None, reason="container missing"),
    GONE_SIGNAL: ExitStatus(None, int(_signal.SIGKILL), reason="container removed"),
}
"""Exit signals of the remote exec guard and the exit status each one stands for."""


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
        guarded = bool(rest) and rest[0].docker is not None and rest[0].docker.image is None
        return SshExecutor(
            hops,
            pool,
            project=project,
            inner=_wrapper_for(rest),
            notice=notice,
            signal_reasons=GUARD_REASONS if guarded else None,
        )
    from devster_tui.executors.docker import DockerExecutor

    assert first.docker is not None
    if len(chain) > 1:
        raise ValueError("a docker layer can only be followed by layers when it is not outermost")
    return DockerExecutor(first.docker, project=project, root=root, notice=notice)


def _check_inner(layers: Sequence[Layer]) -> None:
    for layer in layers:
        if layer.docker is not None and layer.docker.build is not None:
            raise ValueError("a docker build layer must be the outermost layer")


RESUMABLE = frozenset(
    {"disconnected", "container removed", "container stopped", "container missing"}
)
"""Exit reasons after which a resuming process starts again instead of ending."""

STEADY = 5.0
"""Seconds an instance must have run for the reconnect backoff to start again from the
first pause (a container that is still missing is retried ever more slowly)."""


class ResumingExecutor:
    """Starts again a process whose link dropped (``ExitStatus.reason == 'disconnected'``)
    or whose container went away, with backoff, filtering the lines the new instance repeats.

    The filter also spans runs: when a task's previous run ended on its own (not stopped
    or restarted on request) and its restart policy starts it again, the lines the new run
    repeats (``tail -F`` prints its last lines again) are dropped too.  A run after a stop or
    a requested restart starts with a clean filter.
    """

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
        self._carried: dict[str, ResumeFilter] = {}

    async def spawn(self, spec: ProcessSpec, on_output: OutputSink, on_eof: EofSink) -> Process:
        """Start ``spec``; the returned process survives dropped links."""
        carried = self._carried.pop(spec.task, None)
        if carried is not None:
            carried.sink = on_output
            carried.resume()
        proc = ResumingProcess(self, spec, on_output, on_eof, carried)
        await proc.first()
        return proc

    async def aclose(self) -> None:
        """Close the wrapped executor (made for this wrapper alone) and forget the filters."""
        self._carried.clear()
        await self._inner.aclose()

    def _ended(self, proc: ResumingProcess, requested: bool) -> None:
        """A process ended: keep its filter for the task's next run unless it was asked to."""
        task = proc._spec.task
        if ":" in task:  # health probes and stop commands (``task:health``) start clean
            return
        if requested:
            self._carried.pop(task, None)
        else:
            self._carried[task] = proc._filter


class ResumingProcess:
    """One task across any number of reconnects (a ``Process``)."""

    def __init__(
        self,
        owner: ResumingExecutor,
        spec: ProcessSpec,
        on_output: OutputSink,
        on_eof: EofSink,
        carried: ResumeFilter | None = None,
    ) -> None:
        """Prepare; :meth:`first` starts the first instance.

        Args:
            owner: The executor.
            spec: What runs.
            on_output: Output chunks (filtered).
            on_eof: End of each stream (once, at the very end).
            carried: The filter of the task's previous run, already resumed.
        """
        self._owner = owner
        self._spec = spec
        self._on_eof = on_eof
        self._filter = carried if carried is not None else ResumeFilter(on_output)
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
        owner = self._owner
        delay = owner._initial
        notice = owner._notice
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            while True:
                current = self._current
                assert current is not None
                status = await current.wait()
                if self._stopping or status.reason not in RESUMABLE:
                    self._finish(status)
                    return
                if loop.time() - started >= STEADY:
                    delay = owner._initial
                if notice is not None:
                    what = "link lost" if status.reason == "disconnected" else status.reason
                    notice(self._spec.task, "disconnected", f"{what}; reconnecting in {delay:g}s")
                await asyncio.sleep(delay)
                delay = min(delay * 2, owner._maximum)
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
                started = loop.time()
                if notice is not None:
                    notice(self._spec.task, "connected", "link restored")
        except asyncio.CancelledError:
            self._finish(ExitStatus(None, int(_signal.SIGKILL), reason="cancelled"))
            raise

    def _finish(self, status: ExitStatus) -> None:
        self._on_eof("stdout")
        self._on_eof("stderr")
        if not self._done.done():
            self._owner._ended(self, self._stopping)
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
