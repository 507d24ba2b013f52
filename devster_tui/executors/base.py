"""The executor protocol: how the supervisor starts, feeds, signals and reaps a process.

Every backend (local, docker, ssh) implements :class:`Executor`; layers wrap executors
instead of subclassing them.  Output never travels as one call per line: a process hands
raw chunks to an :data:`OutputSink` as they are read, and the output store splits lines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Stream = Literal["stdout", "stderr"]

OutputSink = Callable[[Stream, bytes], None]
"""Called with each raw chunk read from a stream (never with an empty chunk)."""

EofSink = Callable[[Stream], None]
"""Called once per stream when it reaches end of file (or is abandoned after a stop)."""


class SpawnError(Exception):
    """The process could not be started; ``str(exc)`` is the user-facing reason."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno
        """The OS error number, when there is one."""


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How a process ended: exactly one of ``code`` and ``signal`` is set."""

    code: int | None
    """Exit code, when it exited."""
    signal: int | None
    """Signal number, when a signal ended it."""
    reason: str | None = None
    """Why it ended when the process itself could not say (``container removed``,
    ``disconnected``), else None."""

    @property
    def signal_name(self) -> str | None:
        """``SIGKILL`` etc., or None."""
        if self.signal is None:
            return None
        import signal as _signal

        try:
            return _signal.Signals(self.signal).name
        except ValueError:
            return f"SIG{self.signal}"


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """What to run and how."""

    task: str
    """Task name (for records and error messages)."""
    argv: Sequence[str]
    """Exact argv; never joined with spaces by any layer."""
    env: Mapping[str, str]
    """The complete environment of the process."""
    cwd: str
    """Working directory."""
    stdin: Literal["null", "pipe"] = "null"
    """``pipe`` when the task has a stdin source (another task, a file, the console)."""
    stop_signal: int = 15
    """Signal number sent by :meth:`Process.stop`."""
    stop_timeout: float = 10.0
    """Grace period before SIGKILL of the whole group."""
    secret_values: Mapping[str, str] = field(default_factory=dict)
    """Secret name -> value (:mod:`devster_tui.engine.secrets`): values that must never
    appear on a command line."""


class Process(Protocol):
    """A started process (or a remote/container equivalent)."""

    @property
    def pid(self) -> int | None:
        """Local process id (None for remote processes)."""
        ...

    @property
    def pgid(self) -> int | None:
        """Local process group id (None for remote processes)."""
        ...

    async def wait(self) -> ExitStatus:
        """Wait for the process to end and its output to be drained (bounded after a stop)."""
        ...

    def send_signal(self, signum: int) -> None:
        """Send a signal to the whole process group; a no-op once it has ended."""
        ...

    async def stop(self, signum: int, grace: float) -> ExitStatus:
        """Signal the whole group, wait up to ``grace`` seconds, then SIGKILL the whole group.

        Returns once the leader is reaped and every group member is gone (or killed), and
        never waits unboundedly for EOF on the output pipes.
        """
        ...

    async def write_stdin(self, data: bytes) -> None:
        """Write to stdin (``stdin="pipe"`` only); waits while the pipe is full.

        Raises:
            BrokenPipeError: when the process no longer reads its stdin.
        """
        ...

    def close_stdin(self) -> None:
        """Close stdin (EOF for the process)."""
        ...

    def pause_output(self) -> None:
        """Stop reading the process's stdout and stderr until :meth:`resume_output`.

        Flow control for ``backpressure: block`` pipes: while paused, no chunk reaches the
        :data:`OutputSink`, the transport's buffer (an OS pipe, an ssh window, a socket)
        fills and the process blocks in ``write()``; nothing is lost, no signal is sent.
        At most the chunk being handed on when this is called still arrives.  Calling it
        twice is the same as once.  Once the process has ended, what is left in its pipes
        is still read (bounded by their capacity) so that :meth:`wait` and :meth:`stop`
        never hang on a paused process.  A backend whose transport cannot be paused
        implements this as a documented no-op (its output is then only held by the
        consumer's buffer).
        """
        ...

    def resume_output(self) -> None:
        """Read stdout and stderr again after :meth:`pause_output` (idempotent)."""
        ...


class Executor(Protocol):
    """Starts processes somewhere."""

    async def spawn(self, spec: ProcessSpec, on_output: OutputSink, on_eof: EofSink) -> Process:
        """Start ``spec``.

        Raises:
            SpawnError: when it cannot start (``not found: NAME``, permission denied ...).
        """
        ...

    async def aclose(self) -> None:
        """Release what the executor holds (a guard process, connections, API clients).

        Called once by the executor's owner after every process it started has ended
        (the engine does so on shutdown for the executors it made); idempotent.  A wrapping
        executor closes what it wraps only when it owns it (say so in its docstring).
        """
        ...
