"""A scripted fake executor, and virtual time to drive the engine with it in tests.

Why it exists: the interleavings that decide a lifecycle (an exit during a stop, a restart
command during backoff, a dependency that restarts while its dependent is still spawning,
a process that ignores SIGTERM) are a matter of milliseconds with real processes, so tests
over real processes either sleep, flake or cannot reach them.  :class:`FakeExecutor`
implements the :class:`~devster_tui.executors.base.Executor` protocol from a script per
task, in the spirit of httpx's ``MockTransport``: a test says, for each spawn of a task,
what the process prints and when, when and how it ends, how it takes signals, or that the
spawn fails or is slow.  It records every call (spawns with their
:class:`~devster_tui.executors.base.ProcessSpec`, signals, stops, exits, stdin) so a test
can assert on what the engine asked for, not only on what it reported::

    executor = FakeExecutor({
        "api": [Run(output=[(0.0, "stdout", b"ready\\n")]), Run(exit_at=0.5, code=1)],
        "build": [Run(exit_at=0.1, code=0)],
        "broken": [SpawnFails("not found: x")],
    })

Time: every scripted delay is scheduled on the running event loop (``loop.call_later``),
so the fake works on any loop.  For exact, instant tests the module also ships
:class:`VirtualTimeLoop`, an asyncio loop whose clock stands still while anything can run
and jumps straight to the next timer when the loop would otherwise sleep, and
:class:`LoopClock`, a :class:`~devster_tui.state.clock.Clock` that reads the loop's time.
Chosen over :class:`~devster_tui.state.clock.FakeClock` because the engine waits with
``asyncio.sleep`` (backoff, job timeouts), ``asyncio.timeout`` (dependency limits) and
the executor's stop grace, none of which a manual clock can move: with the loop's own clock
virtual, the engine's clock, its sleeps and the script's timers are one timeline, a
scenario with a 10 s backoff runs in milliseconds of real time, and every event's ``mono``
is reproducible.  The loop stays an unmodified ``SelectorEventLoop`` except for
:meth:`VirtualTimeLoop.time` and a selector that decides how long "waiting" takes.  Virtual
time does not move while a worker thread runs (``asyncio.to_thread``: the engine's orphan
cleanup, ensure steps, port checks), so a thread's work takes no virtual time and cannot be
overtaken by a timer.  Ready I/O is served as usual, but I/O that something outside the
loop will only produce later (a real process, a socket fed by a foreign thread) does not
hold time up while a timer is pending: virtual time is for code whose outside world is
this fake and worker threads.  ``run_virtual(main())`` runs a coroutine on such a loop.

Process semantics follow :class:`~devster_tui.executors.local.LocalProcess`: ``pid`` and
``pgid`` are equal fake numbers, output chunks go to the output sink as scheduled (held
while output is paused), both streams reach end of file when the process ends and
:meth:`FakeProcess.wait` returns after that; a signal takes effect on the next loop
iteration, as a real one does; :meth:`FakeProcess.stop` signals, waits up to the grace and
then sends SIGKILL, and a second stop can only bring the SIGKILL forward.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno as _errno
import selectors
import signal as _signal
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, TypeVarTuple

from devster_tui.executors.base import EofSink, ExitStatus, OutputSink, ProcessSpec, SpawnError
from devster_tui.executors.base import Stream as _Stream

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

_DEFAULT_IGNORED = frozenset(
    {_signal.SIGCHLD, _signal.SIGWINCH, _signal.SIGURG, _signal.SIGCONT, 0}
)
"""Signals whose default action is not to end the process (0 only probes)."""

_STOPPING = frozenset({_signal.SIGSTOP, _signal.SIGTSTP, _signal.SIGTTIN, _signal.SIGTTOU})
"""Job-control signals: a fake process does not model being stopped; they do nothing."""


# --------------------------------------------------------------------------- scripts


@dataclass(frozen=True, slots=True)
class Trap:
    """How a process handles a signal it traps: it exits ``after`` seconds with ``code``."""

    after: float = 0.0
    """Seconds from the signal to the exit."""
    code: int = 0
    """Exit code of that exit."""


@dataclass(frozen=True, slots=True)
class Run:
    """One scripted spawn that succeeds: what the process prints and how it ends.

    Times are seconds after the spawn returned.  Without ``exit_at`` the process runs until
    a signal ends it.  A signal that is neither ignored nor trapped ends it at once (killed
    by that signal), as the default disposition does.
    """

    output: Sequence[tuple[float, _Stream, bytes]] = ()
    """``(at, stream, chunk)``: chunks handed to the output sink (none after the exit)."""
    exit_at: float | None = None
    """When the process ends on its own (None: only a signal ends it)."""
    code: int = 0
    """Exit code of the exit at ``exit_at``."""
    signal: int | None = None
    """End at ``exit_at`` killed by this signal instead of exiting with ``code``."""
    ignore: frozenset[int] = frozenset()
    """Signals the process ignores (SIGKILL cannot be ignored)."""
    traps: Mapping[int, Trap] = field(default_factory=dict)
    """Signals the process handles, and how (SIGKILL cannot be trapped)."""
    spawn_delay: float = 0.0
    """Seconds :meth:`FakeExecutor.spawn` takes before it returns (a slow Docker daemon)."""

    def __post_init__(self) -> None:
        """Reject scripts no process could follow."""
        if _signal.SIGKILL in self.ignore or _signal.SIGKILL in self.traps:
            raise ValueError("SIGKILL can be neither ignored nor trapped")
        times = [at for at, _stream, _chunk in self.output]
        times += [t for t in (self.exit_at, self.spawn_delay) if t is not None]
        times += [trap.after for trap in self.traps.values()]
        if any(t < 0 for t in times):
            raise ValueError("script times cannot be negative")


@dataclass(frozen=True, slots=True)
class SpawnFails:
    """One scripted spawn that fails with :class:`SpawnError`."""

    message: str = "not found: fake"
    """The error text (``str(exc)``)."""
    errno: int | None = _errno.ENOENT
    """The error number carried by the exception."""
    after: float = 0.0
    """Seconds the spawn takes before it fails."""


Step = Run | SpawnFails
"""What one spawn of a task does."""

Script = Sequence[Step] | Callable[[ProcessSpec, int], Step]
"""A task's steps by spawn number: a list (its last step repeats once the list is used up)
or a function of the spec and the 1-based spawn number."""


# --------------------------------------------------------------------------- records

CallKind = Literal[
    "spawn",
    "spawned",
    "spawn_failed",
    "spawn_cancelled",
    "signal",
    "stop",
    "exit",
    "stdin",
    "close_stdin",
]


@dataclass(frozen=True, slots=True)
class Call:
    """One thing the engine asked of the executor, or one thing a fake process did."""

    kind: CallKind
    """``spawn`` (called), ``spawned``, ``spawn_failed``, ``spawn_cancelled``, ``signal``
    (delivered to a live process), ``stop`` (called), ``exit``, ``stdin``, ``close_stdin``."""
    task: str
    """``ProcessSpec.task`` of the spawn (``api``, ``api:stop``, ``api:health``)."""
    number: int
    """1-based spawn number of that task name."""
    at: float
    """The loop's time."""
    pid: int | None = None
    """The fake process id, once spawned."""
    spec: ProcessSpec | None = None
    """For ``spawn``: what was asked for."""
    signal: int | None = None
    """For ``signal`` and ``stop``: the signal number."""
    grace: float | None = None
    """For ``stop``: the grace period."""
    status: ExitStatus | None = None
    """For ``exit``: how the process ended."""
    via: str = ""
    """For ``signal``: ``send_signal``, ``stop`` or ``kill`` (the grace ran out)."""
    error: str = ""
    """For ``spawn_failed``: the error text."""
    data: bytes = b""
    """For ``stdin``: the bytes written."""


# --------------------------------------------------------------------------- process


class FakeProcess:
    """A scripted process (the :class:`~devster_tui.executors.base.Process` protocol)."""

    def __init__(
        self,
        executor: FakeExecutor,
        spec: ProcessSpec,
        number: int,
        script: Run,
        pid: int,
        on_output: OutputSink,
        on_eof: EofSink,
    ) -> None:
        """Create the process; :meth:`FakeExecutor.spawn` starts its script.

        Args:
            executor: The executor that records what happens.
            spec: What was asked for.
            number: 1-based spawn number of ``spec.task``.
            script: What the process does.
            pid: Its fake process (and group) id.
            on_output: Where output chunks go.
            on_eof: Told once per stream when the process has ended.
        """
        self.spec = spec
        """What was asked for."""
        self.number = number
        """1-based spawn number of ``spec.task``."""
        self.script = script
        """What the process does."""
        self.stdin = bytearray()
        """Everything written to stdin."""
        self.signals: list[int] = []
        """Signals delivered while it ran, in order."""
        self._executor = executor
        self._pid = pid
        self._on_output = on_output
        self._on_eof = on_eof
        self._loop = asyncio.get_running_loop()
        self._exit: asyncio.Future[ExitStatus] = self._loop.create_future()
        self._timers: list[asyncio.TimerHandle] = []
        self._kill: asyncio.TimerHandle | None = None
        self._ending = False
        self._paused = False
        self._held: list[tuple[_Stream, bytes]] = []
        self._stdin_open = spec.stdin == "pipe"

    def _start(self) -> None:
        script, later = self.script, self._loop.call_later
        for at, stream, chunk in script.output:
            if chunk:
                self._timers.append(later(at, self._emit, stream, chunk))
        if script.exit_at is not None:
            status = ExitStatus(
                code=None if script.signal is not None else script.code, signal=script.signal
            )
            self._timers.append(later(script.exit_at, self._end, status))

    # -- Process protocol -------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The fake process id."""
        return self._pid

    @property
    def pgid(self) -> int | None:
        """The fake process group id (equal to the pid, like a local task)."""
        return self._pid

    @property
    def status(self) -> ExitStatus | None:
        """How it ended, once it has."""
        return self._exit.result() if self._exit.done() else None

    @property
    def paused(self) -> bool:
        """Whether output is paused (:meth:`pause_output`)."""
        return self._paused

    async def wait(self) -> ExitStatus:
        """Wait for the end of the process (both streams have reached end of file)."""
        return await asyncio.shield(self._exit)

    def send_signal(self, signum: int) -> None:
        """Deliver ``signum`` (it takes effect on the next loop iteration); a no-op once ended."""
        self._deliver(signum, "send_signal")

    async def stop(self, signum: int, grace: float) -> ExitStatus:
        """Deliver ``signum``, wait up to ``grace`` seconds, then SIGKILL.

        A second call while a stop is under way delivers its signal too and can only bring
        the SIGKILL forward.
        """
        if self._exit.done():
            return self._exit.result()
        self._note("stop", signal=signum, grace=grace)
        self._deliver(signum, "stop")
        when = self._loop.time() + max(grace, 0.0)
        if self._kill is None or when < self._kill.when():
            if self._kill is not None:
                self._kill.cancel()
            self._kill = self._loop.call_at(when, self._deliver, _signal.SIGKILL, "kill")
        return await asyncio.shield(self._exit)

    async def write_stdin(self, data: bytes) -> None:
        """Record ``data`` as written to stdin.

        Raises:
            BrokenPipeError: when stdin is not a pipe, is closed, or the process has ended.
        """
        if not self._stdin_open or self._ending:
            raise BrokenPipeError(_errno.EPIPE, "stdin is closed")
        self.stdin += data
        self._note("stdin", data=data)

    def close_stdin(self) -> None:
        """Close stdin (recorded once)."""
        if not self._stdin_open:
            return
        self._stdin_open = False
        self._note("close_stdin")

    def pause_output(self) -> None:
        """Hold output chunks until :meth:`resume_output` (the end of the process flushes)."""
        self._paused = True

    def resume_output(self) -> None:
        """Hand on the held chunks, then output as scheduled."""
        if not self._paused:
            return
        self._paused = False
        held, self._held = self._held, []
        for stream, chunk in held:
            self._on_output(stream, chunk)

    # -- internals --------------------------------------------------------------------------

    def _note(
        self,
        kind: CallKind,
        *,
        signal: int | None = None,
        grace: float | None = None,
        status: ExitStatus | None = None,
        via: str = "",
        data: bytes = b"",
    ) -> None:
        self._executor.calls.append(
            Call(
                kind,
                self.spec.task,
                self.number,
                self._loop.time(),
                self._pid,
                signal=signal,
                grace=grace,
                status=status,
                via=via,
                data=data,
            )
        )

    def _emit(self, stream: _Stream, chunk: bytes) -> None:
        if self._ending:
            return
        if self._paused:
            self._held.append((stream, chunk))
        else:
            self._on_output(stream, chunk)

    def _deliver(self, signum: int, via: str) -> None:
        if self._ending:
            return
        self.signals.append(signum)
        self._note("signal", signal=signum, via=via)
        script = self.script
        if signum == _signal.SIGKILL:
            self._loop.call_soon(self._end, ExitStatus(code=None, signal=signum))
        elif signum in script.ignore or signum in _DEFAULT_IGNORED or signum in _STOPPING:
            return
        elif signum in script.traps:
            trap = script.traps[signum]
            status = ExitStatus(code=trap.code, signal=None)
            self._timers.append(self._loop.call_later(trap.after, self._end, status))
        else:
            self._loop.call_soon(self._end, ExitStatus(code=None, signal=signum))

    def _end(self, status: ExitStatus) -> None:
        if self._ending:
            return
        self._ending = True
        for timer in self._timers:
            timer.cancel()
        if self._kill is not None:
            self._kill.cancel()
        self._stdin_open = False
        held, self._held = self._held, []
        for stream, chunk in held:
            self._on_output(stream, chunk)
        self._on_eof("stdout")
        self._on_eof("stderr")
        self._executor._live.pop(self._pid, None)
        self._note("exit", status=status)
        self._exit.set_result(status)


# --------------------------------------------------------------------------- executor


class FakeExecutor:
    """Starts scripted :class:`FakeProcess` es instead of processes (see the module docstring).

    A spawn of a task name without a script runs ``default``; with no default it fails
    with ``SpawnError("fake executor: no script for task NAME")``, which the engine reports
    as ``task.spawn_failed``: an unscripted spawn is visible, never silently a process.
    """

    def __init__(
        self,
        scripts: Mapping[str, Script] | None = None,
        *,
        default: Step | None = None,
        first_pid: int = 40_000,
    ) -> None:
        """Create the executor.

        Args:
            scripts: ``ProcessSpec.task`` -> its script (stop commands are ``NAME:stop``,
                exec probes ``NAME:health``).
            default: What a spawn of an unscripted task name does.
            first_pid: The first fake process id handed out.
        """
        self.scripts: dict[str, Script] = dict(scripts or {})
        """The scripts by task name (a test may add some before the spawn)."""
        self.default = default
        """What a spawn of an unscripted task name does."""
        self.calls: list[Call] = []
        """Everything recorded, in order."""
        self.closed = False
        """Whether :meth:`aclose` was called."""
        self._next_pid = first_pid
        self._counts: dict[str, int] = {}
        self._procs: dict[str, list[FakeProcess]] = {}
        self._live: dict[int, FakeProcess] = {}

    async def spawn(self, spec: ProcessSpec, on_output: OutputSink, on_eof: EofSink) -> FakeProcess:
        """Follow the next step of ``spec.task``'s script.

        Raises:
            SpawnError: when the step is :class:`SpawnFails` (or there is no script).
        """
        loop = asyncio.get_running_loop()
        number = self._counts.get(spec.task, 0) + 1
        self._counts[spec.task] = number
        self._record(Call("spawn", spec.task, number, loop.time(), spec=spec))
        step = self._step(spec, number)
        delay = step.spawn_delay if isinstance(step, Run) else step.after
        if delay > 0:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                self._record(Call("spawn_cancelled", spec.task, number, loop.time()))
                raise
        if isinstance(step, SpawnFails):
            self._record(Call("spawn_failed", spec.task, number, loop.time(), error=step.message))
            raise SpawnError(step.message, step.errno)
        pid = self._next_pid
        self._next_pid += 1
        proc = FakeProcess(self, spec, number, step, pid, on_output, on_eof)
        self._procs.setdefault(spec.task, []).append(proc)
        self._live[pid] = proc
        self._record(Call("spawned", spec.task, number, loop.time(), pid))
        proc._start()
        return proc

    async def aclose(self) -> None:
        """Mark the executor closed (:attr:`closed`); its processes are left as they are,
        so a test sees what the engine left running."""
        self.closed = True

    def _step(self, spec: ProcessSpec, number: int) -> Step:
        script = self.scripts.get(spec.task)
        if script is None:
            if self.default is not None:
                return self.default
            return SpawnFails(f"fake executor: no script for task {spec.task}", None)
        if callable(script):
            return script(spec, number)
        if not script:
            raise ValueError(f"the script of task {spec.task} has no step")
        return script[min(number, len(script)) - 1]

    def _record(self, call: Call) -> None:
        self.calls.append(call)

    # -- what a test looks at ---------------------------------------------------------------

    def calls_of(self, task: str | None = None, kind: CallKind | None = None) -> list[Call]:
        """Recorded calls, filtered by task name and kind."""
        return [
            c
            for c in self.calls
            if (task is None or c.task == task) and (kind is None or c.kind == kind)
        ]

    def specs(self, task: str) -> list[ProcessSpec]:
        """The specs of every spawn of ``task`` asked for, in order (failed ones included)."""
        return [c.spec for c in self.calls_of(task, "spawn") if c.spec is not None]

    def signals(self, task: str) -> list[int]:
        """Every signal delivered to ``task``'s processes, in order."""
        return [c.signal for c in self.calls_of(task, "signal") if c.signal is not None]

    def processes(self, task: str) -> list[FakeProcess]:
        """The processes spawned for ``task``, in order."""
        return list(self._procs.get(task, ()))

    @property
    def live(self) -> tuple[FakeProcess, ...]:
        """Processes that have not ended."""
        return tuple(self._live.values())


# --------------------------------------------------------------------------- virtual time

WORKER_POLL = 0.05
"""Real seconds between checks while virtual time waits for a worker thread."""


class _VirtualSelector(selectors.BaseSelector):
    """The real selector, except that waiting for a timer takes no real time."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._real = selectors.DefaultSelector()
        self._loop = loop

    def register(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or (timeout is not None and timeout <= 0):
            return ready
        loop = self._loop
        if loop._workers:
            # Time stands still while a worker thread runs: wait for it in real time.
            loop._check_workers()
            wait = WORKER_POLL if timeout is None else min(timeout, WORKER_POLL)
            return self._real.select(wait)
        if timeout is None:
            return self._real.select(None)  # no timer at all: only I/O can happen next
        loop._advance(timeout)
        return []

    def close(self) -> None:
        self._real.close()

    def get_key(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Mapping[FileDescriptorLike, selectors.SelectorKey]:
        return self._real.get_map()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: when nothing is ready, the clock jumps to the next timer.

    Callbacks, I/O and worker threads run as usual; only waiting for a timer costs no real
    time.  While a worker thread started with :meth:`run_in_executor` (or
    ``asyncio.to_thread``) runs, the clock stands still and the loop waits for the thread
    in real time, up to ``worker_limit`` real seconds per wait.
    """

    def __init__(self, start: float = 0.0, worker_limit: float = 30.0) -> None:
        """Create the loop.

        Args:
            start: The initial reading of :meth:`time`.
            worker_limit: Real seconds a worker thread may keep the clock standing before
                the loop raises ``TimeoutError`` (a hung thread must not hang a test).
        """
        self._now = start
        self._workers = 0
        self._workers_since: float | None = None
        self._worker_limit = worker_limit
        super().__init__(_VirtualSelector(self))

    def time(self) -> float:
        """The virtual time."""
        return self._now

    def _advance(self, seconds: float) -> None:
        self._now += seconds

    def _check_workers(self) -> None:
        now = time.monotonic()
        if self._workers_since is None:
            self._workers_since = now
        elif now - self._workers_since > self._worker_limit:
            self._workers_since = None  # the next wait measures afresh
            raise TimeoutError(f"a worker thread ran longer than {self._worker_limit:g} s")

    def run_in_executor(
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[[*_Ts], _T],
        *args: *_Ts,
    ) -> asyncio.Future[_T]:
        """Run ``func`` in a thread as usual; virtual time stands still until it is done."""
        future = super().run_in_executor(executor, func, *args)
        self._workers += 1
        future.add_done_callback(self._worker_done)
        return future

    def _worker_done(self, _future: asyncio.Future[Any]) -> None:
        self._workers -= 1
        self._workers_since = None


def run_virtual(main: Coroutine[Any, Any, _T], *, start: float = 0.0) -> _T:
    """Run ``main`` to completion on a fresh :class:`VirtualTimeLoop` (like ``asyncio.run``)."""
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(start)) as runner:
        return runner.run(main)


class LoopClock:
    """A :class:`~devster_tui.state.clock.Clock` that reads the running loop's time.

    Under :class:`VirtualTimeLoop` this is the virtual time, so the engine's events, its
    policy decisions and its sleeps share one timeline.  Read outside a running loop, it
    returns its last reading.
    """

    __slots__ = ("_last", "_wall_zero")

    def __init__(self, wall_zero: float = 1_700_000_000.0) -> None:
        """Create the clock.

        Args:
            wall_zero: The wall-clock reading (UNIX seconds) at loop time 0.
        """
        self._last = 0.0
        self._wall_zero = wall_zero

    def monotonic(self) -> float:
        """The running loop's time."""
        try:
            self._last = asyncio.get_running_loop().time()
        except RuntimeError:
            pass
        return self._last

    def wall(self) -> float:
        """``wall_zero`` plus :meth:`monotonic`."""
        return self._wall_zero + self.monotonic()
