"""The remote end of every layer chain: a tiny POSIX sh wrapper and the framed channel to it.

Why: a process behind ``docker exec`` or ssh cannot be signalled as a group from here
(Docker has no API to signal an exec; an ssh ``signal`` request reaches one process at
best), and it does not end when the channel closes.  So the innermost hop runs
:data:`WRAPPER`, which starts the task in its own session (``setsid``), records its process
group under a per-task key (a new instance ends the previous one: after a reconnect exactly
one runs), and reads *control frames* from the channel's stdin: environment values, stdin
data, signals.  End of file on the channel (the task was stopped, the link dropped, devster
died) ends the whole group: SIGTERM, the grace period, then SIGKILL.  Environment values
travel as frames, never on a command line, so newlines and ``$`` arrive intact and secret
values (``${secret:NAME}`` in env) never show in a process list.  argv elements go on
command lines only quoted with :func:`shlex.quote`, one element at a time, once per shell
that will read them.

Frames (ASCII header line, then exactly ``LEN`` raw bytes where a length is given)::

    E NAME LEN   environment variable       R          start the task
    D LEN        stdin data                 Z          close the task's stdin
    S SIGNAME    signal the task's group    (EOF)      end the group
    H            report the start

After ``H``, the wrapper reports on stdout, before the task prints anything, one line
``\x1edevster C`` where ``C`` is ``O`` (started), ``N`` (command not found), ``P`` (not
executable) or ``D`` (working directory missing): :class:`FramedProcess` removes it and the
executors turn a failure into a spawn error, as the local executor does.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import re
import shlex
import signal as _signal
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from devster_tui.executors.base import (
    EofSink,
    ExitStatus,
    OutputSink,
    ProcessSpec,
    SpawnError,
    Stream,
)

WRAPPER = r"""k=$1 d=$2 g=$3 m=$4; shift 4
rd() { [ "$1" -gt 0 ] && dd bs="$1" count=1 iflag=fullblock 2>/dev/null; }
r=0 h=
while IFS=' ' read -r o a b; do
  case $o in
  E) v=$(rd "$b"; echo .); export "$a=${v%.}";;
  H) h=1;;
  R) r=1; break;;
  *) echo "devster: bad control frame" >&2; exit 125;;
  esac
done
[ "$r" = 1 ] || exit 125
st() { s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; set -- $s; echo "${20}"; }
p=${TMPDIR:-/tmp}/devster-$k.pid
if [ -n "$k" ] && [ -f "$p" ]; then
  read -r op os < "$p"
  if [ -n "$op" ] && [ -n "$os" ] && [ "$(st "$op")" = "$os" ]; then
    kill -s TERM -- "-$op" 2>/dev/null
    i=0
    while kill -s 0 -- "-$op" 2>/dev/null && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i+1)); done
    kill -s KILL -- "-$op" 2>/dev/null
  fi
fi
hs() { [ -z "$h" ] || printf '\036devster %s\n' "$1"; }
if [ -n "$d" ]; then
  if [ -n "$h" ]; then cd "$d" 2>/dev/null || { hs D; exit 126; }; else cd "$d" || exit 126; fi
fi
if [ -n "$h" ]; then
  x=$(command -v -- "$1" 2>/dev/null)
  case $x in
  '') hs N; exit 127;;
  */*) if [ -d "$x" ] || [ ! -x "$x" ]; then hs P; exit 126; fi;;
  esac
  hs O
fi
S=; command -v setsid >/dev/null 2>&1 && S=setsid
exec 3<&0
if [ "$m" = pipe ]; then
  t=$(mktemp -d) && mkfifo "$t/i" || exit 125
  $S "$@" <"$t/i" 3<&- &
  c=$!
  exec 4>"$t/i"
  rm -rf "$t"
else
  $S "$@" </dev/null 3<&- &
  c=$!
  exec 4>/dev/null
fi
[ -z "$k" ] || echo "$c $(st "$c")" > "$p"
(
  while IFS=' ' read -r o a; do
    case $o in
    D) rd "$a" >&4 2>/dev/null || :;;
    Z) exec 4>&-;;
    S) kill -s "$a" -- "-$c" 2>/dev/null || kill -s "$a" "$c" 2>/dev/null;;
    esac
  done
  kill -s TERM -- "-$c" 2>/dev/null || kill -s TERM "$c" 2>/dev/null
  i=0
  while kill -s 0 -- "-$c" 2>/dev/null && [ "$i" -lt "$g" ]; do sleep 0.1; i=$((i+1)); done
  kill -s KILL -- "-$c" 2>/dev/null || kill -s KILL "$c" 2>/dev/null
) <&3 3<&- &
w=$!
exec 3<&- 4>&- 0</dev/null
wait "$c" 2>/dev/null
rc=$?
kill -s TERM -- "-$c" 2>/dev/null
kill "$w" 2>/dev/null
if [ -n "$k" ] && [ -f "$p" ]; then read -r x y < "$p"; [ "$x" != "$c" ] || rm -f "$p"; fi
exit "$rc"
"""
"""The wrapper run by ``sh -c`` at the innermost hop: ``KEY CWD GRACE_TENTHS STDIN argv...``."""

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")

NoticeSink = Callable[[str, str, str], None]
"""``(task, state, detail)``: a layer tells the engine about waiting or link states
(``waiting``, ``disconnected``, ``connected``) and warnings (``warning``)."""


def quote_argv(argv: Sequence[str]) -> str:
    """One shell command line that runs ``argv`` exactly: each element quoted on its own.

    Args:
        argv: The argument vector.

    Returns:
        ``shlex.quote`` of every element, joined by single spaces.
    """
    return " ".join(shlex.quote(arg) for arg in argv)


def instance_key(project: str, task: str) -> str:
    """The key under which the wrapper records a task's process group on a host.

    Args:
        project: Project name (tasks of two projects never end each other).
        task: Task (or instance) name.

    Returns:
        A file-name-safe key.
    """
    return _KEY_UNSAFE.sub("_", f"{project}.{task}")[:200]


def wrap_argv(spec: ProcessSpec, *, key: str = "", cwd: str = "") -> list[str]:
    """The argv that runs ``spec`` under :data:`WRAPPER` (``sh -c WRAPPER ...``).

    Args:
        spec: What to run (its argv is passed on untouched).
        key: Instance key (empty: no previous-instance handling).
        cwd: Working directory on the far side (empty: the default one).

    Returns:
        The wrapped argv.
    """
    tenths = max(1, round(spec.stop_timeout * 10))
    return [
        "sh",
        "-c",
        WRAPPER,
        "devster",
        key,
        cwd,
        str(tenths),
        spec.stdin,
        *spec.argv,
    ]


def env_frames(env: Mapping[str, str], *, handshake: bool = False) -> bytes:
    """The frames that set ``env`` and start the task (names that sh cannot export are left out).

    Args:
        env: Variables to set on the far side.
        handshake: Ask the wrapper to report the start (see :meth:`FramedProcess.handshake`).

    Returns:
        ``E`` frames (after ``H`` when asked) followed by ``R``.
    """
    out = bytearray(HANDSHAKE_FRAME if handshake else b"")
    for name, value in env.items():
        if not _ENV_NAME.match(name):
            continue
        data = value.encode("utf-8", "surrogateescape")
        out += f"E {name} {len(data)}\n".encode("ascii") + data
    out += b"R\n"
    return bytes(out)


def data_frame(data: bytes) -> bytes:
    """A stdin data frame."""
    return f"D {len(data)}\n".encode("ascii") + data


def signal_frame(signum: int) -> bytes:
    """A frame that sends ``signum`` to the task's process group."""
    try:
        name = _signal.Signals(signum).name.removeprefix("SIG")
    except ValueError:
        name = str(signum)
    return f"S {name}\n".encode("ascii")


CLOSE_STDIN_FRAME = b"Z\n"
"""Closes the task's stdin on the far side."""

HANDSHAKE_FRAME = b"H\n"
"""Asks the wrapper to report on stdout whether the task started."""

HANDSHAKE_TIMEOUT = 10.0
"""Seconds a spawn waits for the start report (ending a previous instance takes up to 5 s);
after that the process is handed on and a late report still ends it properly."""

_HEADER = b"\x1edevster "
_HEADER_MAX = len(_HEADER) + 3


def handshake_error(code: str | None, spec: ProcessSpec) -> SpawnError | None:
    """The spawn error for a wrapper's start report (None: started, or no report).

    Args:
        code: The report (``O``, ``N``, ``P``, ``D``), None when none came.
        spec: What was started (names the command and the directory).
    """
    name = spec.argv[0] if spec.argv else ""
    if code == "N":
        return SpawnError(f"not found: {name}", errno.ENOENT)
    if code == "P":
        return SpawnError(f"permission denied: {name}", errno.EACCES)
    if code == "D":
        return SpawnError(f"working directory not found: {spec.cwd}", errno.ENOENT)
    return None


def decode_exit(code: int | None, signal_name: str | None = None) -> ExitStatus:
    """The exit status of a wrapped task from what its channel reported.

    The wrapper exits with the task's code, or 128+N when a signal N ended it.

    Args:
        code: Exit code of the wrapper (None when unknown).
        signal_name: Signal that ended the wrapper itself (``KILL``, ``SIGKILL``...).
    """
    if signal_name:
        name = signal_name if signal_name.startswith("SIG") else f"SIG{signal_name}"
        try:
            return ExitStatus(None, int(_signal.Signals[name]))
        except KeyError:
            return ExitStatus(255, None)
    if code is None:
        return ExitStatus(255, None)
    if 128 < code <= 128 + 64:
        return ExitStatus(None, code - 128)
    return ExitStatus(code, None)


class Channel(Protocol):
    """The transport under a :class:`FramedProcess` (an ssh session, a Docker socket)."""

    def write(self, data: bytes) -> None:
        """Queue bytes for the far side's stdin (a no-op once closed)."""
        ...

    async def drain(self) -> None:
        """Wait while the write buffer is full."""
        ...

    def write_eof(self) -> None:
        """Half-close: the far side reads end of file."""
        ...

    def abort(self) -> None:
        """Close the channel at once."""
        ...


class FramedProcess:
    """A task behind :data:`WRAPPER`: stdin, signals and stop travel as frames.

    The owner feeds the channel's output into :meth:`feed` and :meth:`feed_eof` and settles
    it with :meth:`set_exit` (or :meth:`set_lost` when the channel broke).
    """

    def __init__(
        self,
        spec: ProcessSpec,
        channel: Channel,
        on_output: OutputSink,
        on_eof: EofSink,
        *,
        lost_grace: float = 2.0,
        handshake: bool = False,
    ) -> None:
        """Wrap an open channel whose far side runs :data:`WRAPPER`.

        Args:
            spec: What runs.
            channel: The transport.
            on_output: Output chunks.
            on_eof: End of each stream.
            lost_grace: Seconds to wait for the exit after the kill of a stop.
            handshake: The wrapper was sent :data:`HANDSHAKE_FRAME`: the first stdout line is
                its start report (removed from the output).
        """
        self._loop = asyncio.get_running_loop()
        self._spec = spec
        self._channel = channel
        self._on_output = on_output
        self._on_eof = on_eof
        self._lost_grace = lost_grace
        self._exit: asyncio.Future[ExitStatus] = self._loop.create_future()
        self._open: set[Stream] = {"stdout", "stderr"}
        self._stdin_open = spec.stdin == "pipe"
        self._stopping: asyncio.Task[ExitStatus] | None = None
        self._header: bytearray | None = bytearray() if handshake else None
        self._report: asyncio.Future[str | None] = self._loop.create_future()
        if not handshake:
            self._report.set_result(None)
        self.stop_requested = False
        """True once :meth:`stop` was called."""

    @property
    def pid(self) -> int | None:
        """None: the process is not local."""
        return None

    @property
    def pgid(self) -> int | None:
        """None: the process group is not local."""
        return None

    @property
    def done(self) -> bool:
        """Whether the exit status is known."""
        return self._exit.done()

    # -- fed by the owner ----------------------------------------------------------------

    def feed(self, stream: Stream, data: bytes) -> None:
        """Hand on an output chunk (the start report is taken off the front of stdout)."""
        if stream == "stdout" and self._header is not None:
            data = self._take_header(data)
        if data and stream in self._open:
            self._on_output(stream, data)

    def _take_header(self, data: bytes) -> bytes:
        header = self._header
        assert header is not None
        header += data
        end = header.find(b"\n")
        if end < 0:
            if len(header) < _HEADER_MAX and _HEADER.startswith(bytes(header[: len(_HEADER)])):
                return b""
            return self._no_header()
        line = bytes(header[:end]).rstrip(b"\r")  # a tty turns the newline into CR LF
        if not line.startswith(_HEADER) or len(line) != len(_HEADER) + 1:
            return self._no_header()
        rest = bytes(header[end + 1 :])
        self._header = None
        if not self._report.done():
            self._report.set_result(line[-1:].decode("ascii", "replace"))
        return rest

    def _no_header(self) -> bytes:
        """Something else came first (an older wrapper, a hop's message): pass it all on."""
        header, self._header = self._header or bytearray(), None
        if not self._report.done():
            self._report.set_result(None)
        return bytes(header)

    async def handshake(self, within: float = HANDSHAKE_TIMEOUT) -> str | None:
        """Wait for the wrapper's start report.

        Args:
            within: Longest wait in seconds.

        Returns:
            ``O``, ``N``, ``P`` or ``D`` (see the module docstring); None when the channel
            ended, something else came first, or no report came in time.
        """
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(self._report), within)
        return None

    def feed_eof(self, stream: Stream | None = None) -> None:
        """One stream (None: both) reached end of file."""
        if stream in (None, "stdout") and self._header is not None:
            held = self._no_header()
            if held and "stdout" in self._open:
                self._on_output("stdout", held)
        for s in ("stdout", "stderr") if stream is None else (stream,):
            if s in self._open:
                self._open.discard(s)
                self._on_eof(s)

    def set_exit(self, status: ExitStatus) -> None:
        """Settle the exit status (the first call wins); closes the streams."""
        self.feed_eof()
        if not self._exit.done():
            self._exit.set_result(status)

    def abandon(self) -> None:
        """Close the channel at once (a spawn was cancelled): the far side ends the group."""
        self._channel.abort()

    def set_lost(self, reason: str) -> None:
        """The channel broke before an exit status arrived."""
        self.set_exit(ExitStatus(255, None, reason=reason))

    # -- Process protocol ----------------------------------------------------------------

    async def wait(self) -> ExitStatus:
        """Wait for the exit status."""
        return await asyncio.shield(self._exit)

    def send_signal(self, signum: int) -> None:
        """Signal the task's whole group on the far side."""
        if not self._exit.done():
            self._channel.write(signal_frame(signum))

    async def stop(self, signum: int, grace: float) -> ExitStatus:
        """``signum`` to the group, wait ``grace``, SIGKILL, then give up on the channel."""
        self.stop_requested = True
        if self._exit.done():
            return self._exit.result()
        if self._stopping is None or signum == _signal.SIGKILL:
            if self._stopping is not None:
                self.send_signal(_signal.SIGKILL)
            else:
                self._stopping = self._loop.create_task(self._stop(signum, grace))
        return await asyncio.shield(self._stopping)

    async def _stop(self, signum: int, grace: float) -> ExitStatus:
        self.send_signal(signum)
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(self._exit), max(grace, 0.0))
        self.send_signal(_signal.SIGKILL)
        self._channel.write_eof()
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(self._exit), self._lost_grace)
        self._channel.abort()
        self.set_exit(ExitStatus(None, int(_signal.SIGKILL), reason="no answer after the kill"))
        return self._exit.result()

    async def write_stdin(self, data: bytes) -> None:
        """Send ``data`` to the task's stdin as data frames.

        Raises:
            BrokenPipeError: when stdin is closed or the task has ended.
        """
        if not self._stdin_open or self._exit.done():
            raise BrokenPipeError("stdin is closed")
        view = memoryview(data)
        while view:
            chunk = bytes(view[:65536])
            view = view[65536:]
            self._channel.write(data_frame(chunk))
            await self._channel.drain()

    def close_stdin(self) -> None:
        """The task reads end of file (the channel itself stays open for control)."""
        if self._stdin_open:
            self._stdin_open = False
            if not self._exit.done():
                self._channel.write(CLOSE_STDIN_FRAME)

    def pause_output(self) -> None:
        """A no-op: the channel is not paused yet, so a blocking pipe's consumer buffer
        holds whatever this task prints (nothing is lost, the task is not slowed)."""

    def resume_output(self) -> None:
        """A no-op (see :meth:`pause_output`)."""


class ResumeFilter:
    """Drops the lines a follow command repeats after a reconnect (``tail -F`` prints its
    last lines again; so does ``docker logs --tail``): output resumes without duplicates.

    Complete lines passed on are remembered (at most ``keep`` per stream).  After
    :meth:`resume`, new lines are held while they repeat a run of that history; when the
    repetition reaches the newest remembered line it is dropped, and a line that breaks it
    releases everything held.
    """

    def __init__(self, sink: OutputSink, keep: int = 1000) -> None:
        """Filter output on its way to ``sink``.

        Args:
            sink: Where the filtered chunks go.
            keep: How many recent lines to remember per stream.
        """
        self.sink = sink
        """Where the filtered chunks go (a new run of the task passes its own)."""
        self._keep = keep
        self._history: dict[Stream, deque[bytes]] = {
            "stdout": deque(maxlen=keep),
            "stderr": deque(maxlen=keep),
        }
        self._emitted_partial: dict[Stream, bytes] = {"stdout": b"", "stderr": b""}
        self._pending: dict[Stream, bytes] = {"stdout": b"", "stderr": b""}
        self._candidates: dict[Stream, list[int] | None] = {"stdout": None, "stderr": None}
        self._held: dict[Stream, list[bytes]] = {"stdout": [], "stderr": []}

    def resume(self) -> None:
        """A new connection starts: its first lines may repeat the history."""
        for stream in ("stdout", "stderr"):
            partial = self._emitted_partial[stream]
            if partial:
                self._history[stream].append(partial)
                self._emitted_partial[stream] = b""
            self._pending[stream] = b""
            self._held[stream] = []
            self._candidates[stream] = [] if self._history[stream] else None

    def __call__(self, stream: Stream, data: bytes) -> None:
        """Take a chunk from the current connection."""
        if self._candidates[stream] is None:
            self._pass(stream, data)
            return
        lines = (self._pending[stream] + data).split(b"\n")
        self._pending[stream] = lines.pop()
        out = bytearray()
        for index, line in enumerate(lines):
            out += self._match(stream, line)
            if self._candidates[stream] is None:
                rest = lines[index + 1 :]
                tail = b"\n".join(rest) + (b"\n" if rest else b"") + self._pending[stream]
                self._pending[stream] = b""
                if out:
                    self._pass(stream, bytes(out))
                if tail:
                    self._pass(stream, tail)
                return

    def _pass(self, stream: Stream, data: bytes) -> None:
        self.sink(stream, data)
        lines = (self._emitted_partial[stream] + data).split(b"\n")
        self._emitted_partial[stream] = lines.pop()
        self._history[stream].extend(lines[-self._keep :])

    def _match(self, stream: Stream, line: bytes) -> bytes:
        """Fold one complete line into the match; returns bytes to release (not remembered)."""
        history = self._history[stream]
        held = self._held[stream]
        n = len(held)
        previous = self._candidates[stream] or []
        if n == 0:
            found = [i for i, old in enumerate(history) if old == line]
        else:
            found = [i for i in previous if i + n < len(history) and history[i + n] == line]
        if found:
            held.append(line)
            if any(i + n + 1 == len(history) for i in found):
                self._candidates[stream] = None
                self._held[stream] = []
                return b""
            self._candidates[stream] = found
            return b""
        self._candidates[stream] = None
        self._held[stream] = []
        return b"".join(old + b"\n" for old in (*held, line))
