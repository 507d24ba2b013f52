"""The local executor: runs each task as its own session and process group on this machine.

Why this shape: a task must start clean (own session and group, no controlling terminal,
stdin ``/dev/null``, only fds 0-2, every signal disposition at its default and an empty
signal mask), must be stoppable as a whole group, and must never outlive devster.  The
standard library cannot do all of that at once: ``subprocess`` keeps ignored signals
ignored and the parent's signal mask, and ``os.posix_spawn`` has no working directory.  So
glibc's (or musl's) ``posix_spawn`` is called through ``ctypes`` with ``SETSID``,
``SETSIGDEF`` (all signals), ``SETSIGMASK`` (empty) and the ``addchdir_np`` /
``addclosefrom_np`` file actions: one ``vfork``-style clone per task, and exec failures
(``ENOENT``, ``EACCES``) come back as the return value instead of a fake exit 127.
A child's exit is watched with a pidfd on the event loop (no watcher threads); output is
read from non-blocking pipes with ``add_reader`` and handed on as raw chunks.

No process outlives its task: with cgroup v2 each run is spawned into a cgroup of its own
(:mod:`devster_tui.executors.cgroup`), so ``setsid`` and double forks cannot get out of it;
without, the engine is a child subreaper and finds escapees in ``/proc``
(:mod:`devster_tui.executors.contain`).  A guard process
(:mod:`devster_tui.executors.guard`) ends all of it when devster dies, ``kill -9``
included, and every SIGKILL devster sends is reported as a :class:`KillNotice`.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import select
import signal
import stat
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from devster_tui.executors import guard as _guard
from devster_tui.executors.base import EofSink, ExitStatus, OutputSink, ProcessSpec, SpawnError
from devster_tui.executors.base import Stream as _Stream
from devster_tui.executors.cgroup import CgroupTree, RunCgroup
from devster_tui.executors.contain import KillNotice, KillSink, RunScope, reap_adopted
from devster_tui.executors.contain import set_subreaper as _set_subreaper

__all__ = ["GroupListener", "KillNotice", "KillSink", "LocalExecutor", "LocalProcess"]

READ_SIZE = 256 * 1024
"""Bytes asked for per read of a task's stdout/stderr pipe."""

DRAIN_WINDOW = 0.2
"""Seconds the pipes may stay open after the whole group is gone (a setsid'd grandchild
holding them) before they are closed anyway."""

PIPE_SIZE = 256 * 1024
"""Capacity asked for a task's stdout pipe: with the 64 KiB default a fast writer blocks
often and 1,000,000 lines took 0.8-1.5 s to read instead of a steady 0.73 s."""

_BIG_PIPES = 64
"""Live tasks whose stdout gets :data:`PIPE_SIZE` (pipe memory counts against a per-user
limit, ``fs.pipe-user-pages-soft``, 64 MiB by default)."""

_SPAWN_SETSIGDEF = 0x04
_SPAWN_SETSIGMASK = 0x08
_SPAWN_SETSID = 0x80
# The values above are the same in glibc and musl (Linux).

_BUFFER = 1024
"""Bytes reserved for each opaque libc structure (glibc needs 336 at most)."""

_POLL_MAX = 0.05
"""Longest pause between two checks for remaining group members during a stop."""

_GIVE_UP = 5.0
"""Seconds of SIGKILL after which members that cannot be signalled are left alone."""

_REAP_EVERY = 2.0
"""Seconds between two looks for ended adopted escapees (fallback without cgroups only)."""


class GroupListener(Protocol):
    """Told about every process group the executor starts and ends (e.g. the engine's
    record of live processes, used to clean up after a crash)."""

    def group_started(self, task: str, pid: int, pgid: int, cgroup: str | None = None) -> None:
        """A group was spawned for ``task`` (in the run cgroup ``cgroup``, if any)."""
        ...

    def cgroup_created(self, path: str) -> None:
        """The engine's cgroup subtree was created (before anything is spawned into it)."""
        ...

    def group_ended(self, pid: int, pgid: int) -> None:
        """The group's leader was reaped and no member is left."""
        ...


class _Libc:
    """The few libc functions needed for a clean ``posix_spawn``."""

    def __init__(self) -> None:
        if not sys.platform.startswith("linux"):
            raise SpawnError("the local executor needs Linux")
        lib = ctypes.CDLL(None, use_errno=True)
        vp = ctypes.c_void_p
        ci = ctypes.c_int
        cp = ctypes.c_char_p
        try:
            self.spawn_fn = self._fn(
                lib.posix_spawn,
                [
                    ctypes.POINTER(ctypes.c_int),
                    cp,
                    vp,
                    vp,
                    ctypes.POINTER(cp),
                    ctypes.POINTER(cp),
                ],
            )
            self.fa_init = self._fn(lib.posix_spawn_file_actions_init, [vp])
            self.fa_destroy = self._fn(lib.posix_spawn_file_actions_destroy, [vp])
            self.fa_dup2 = self._fn(lib.posix_spawn_file_actions_adddup2, [vp, ci, ci])
            self.fa_open = self._fn(
                lib.posix_spawn_file_actions_addopen, [vp, ci, cp, ci, ctypes.c_uint]
            )
            self.fa_close = self._fn(lib.posix_spawn_file_actions_addclose, [vp, ci])
            self.fa_chdir = self._fn(lib.posix_spawn_file_actions_addchdir_np, [vp, cp])
            self.attr_init = self._fn(lib.posix_spawnattr_init, [vp])
            self.attr_flags = self._fn(lib.posix_spawnattr_setflags, [vp, ctypes.c_short])
            self.attr_sigmask = self._fn(lib.posix_spawnattr_setsigmask, [vp, vp])
            self.attr_sigdefault = self._fn(lib.posix_spawnattr_setsigdefault, [vp, vp])
            sigemptyset = self._fn(lib.sigemptyset, [vp])
            sigfillset = self._fn(lib.sigfillset, [vp])
        except AttributeError as exc:
            raise SpawnError(f"the C library lacks a posix_spawn feature: {exc}") from None
        closefrom = getattr(lib, "posix_spawn_file_actions_addclosefrom_np", None)
        self.fa_closefrom = None if closefrom is None else self._fn(closefrom, [vp, ci])
        # One attribute object serves every spawn: posix_spawn only reads it.
        self._attr = ctypes.create_string_buffer(_BUFFER)
        self._all = ctypes.create_string_buffer(_BUFFER)
        self._none = ctypes.create_string_buffer(_BUFFER)
        sigfillset(ctypes.byref(self._all))
        # sigfillset leaves out the C library's internal signals (32 and 33 in glibc), and
        # glibc's spawn helper then sets them to SIG_IGN, which survives exec.  Setting the
        # bits of signals 1-64 directly resets them to SIG_DFL too (any word size/order).
        ctypes.memset(self._all, 0xFF, 8)
        sigemptyset(ctypes.byref(self._none))
        attr = ctypes.byref(self._attr)
        self._check(self.attr_init(attr), "posix_spawnattr_init")
        self._check(self.attr_sigdefault(attr, ctypes.byref(self._all)), "setsigdefault")
        self._check(self.attr_sigmask(attr, ctypes.byref(self._none)), "setsigmask")
        flags = _SPAWN_SETSID | _SPAWN_SETSIGDEF | _SPAWN_SETSIGMASK
        self._check(self.attr_flags(attr, flags), "posix_spawnattr_setflags")

    @staticmethod
    def _fn(fn: Any, argtypes: list[Any]) -> Any:
        fn.argtypes = argtypes
        fn.restype = ctypes.c_int
        return fn

    @staticmethod
    def _check(rc: int, what: str) -> None:
        if rc != 0:
            raise SpawnError(f"{what}: {os.strerror(rc)}", rc)

    def spawn(
        self,
        path: bytes,
        argv: Sequence[bytes],
        envp: Sequence[bytes],
        cwd: bytes,
        stdio: tuple[int | None, int | None, int | None],
    ) -> tuple[int, int]:
        """Start a process; returns ``(pid, 0)`` or ``(0, errno)``.

        ``stdio`` gives the fd to install as 0, 1 and 2 (None: ``/dev/null``).  Every other
        descriptor is closed in the child; the process gets a new session.
        """
        fa_buf = ctypes.create_string_buffer(_BUFFER)
        fa = ctypes.byref(fa_buf)
        self._check(self.fa_init(fa), "posix_spawn_file_actions_init")
        try:
            for target, fd in enumerate(stdio):
                if fd is None:
                    mode = os.O_RDONLY if target == 0 else os.O_WRONLY
                    rc = self.fa_open(fa, target, b"/dev/null", mode, 0)
                else:
                    rc = self.fa_dup2(fa, fd, target)
                self._check(rc, "posix_spawn file action")
            if self.fa_closefrom is not None:
                self._check(self.fa_closefrom(fa, 3), "addclosefrom_np")
            else:
                for fd in _inheritable_fds():
                    self._check(self.fa_close(fa, fd), "addclose")
            self._check(self.fa_chdir(fa, cwd), "addchdir_np")
            c_argv = (ctypes.c_char_p * (len(argv) + 1))(*argv, None)
            c_envp = (ctypes.c_char_p * (len(envp) + 1))(*envp, None)
            pid = ctypes.c_int(0)
            rc = self.spawn_fn(
                ctypes.byref(pid), path, fa, ctypes.byref(self._attr), c_argv, c_envp
            )
        finally:
            self.fa_destroy(fa)
        return (pid.value, 0) if rc == 0 else (0, rc)


def _inheritable_fds() -> list[int]:
    """Descriptors above 2 without close-on-exec (only used when closefrom is missing)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    found.append(fd)
            except OSError:
                continue
    return found


_LIBC: _Libc | None = None
_LIBC_LOCK = threading.Lock()


def _libc() -> _Libc:
    global _LIBC
    with _LIBC_LOCK:
        if _LIBC is None:
            _LIBC = _Libc()
        return _LIBC


def _pipe() -> tuple[int, int]:
    """A close-on-exec pipe whose ends are never fds 0-2 (those may be closed in devster)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    fds = []
    for fd in (r, w):
        if fd <= 2:
            fds.append(_high_fd(fd))
        else:
            fds.append(fd)
    return fds[0], fds[1]


def _grow_pipe(fd: int) -> None:
    import fcntl

    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        return  # over the per-user pipe memory limit: keep the default size


def _high_fd(fd: int) -> int:
    import fcntl

    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return new


def _resolve(name: str, env: Mapping[str, str], cwd: str) -> str:
    """Find the executable for ``name`` like ``execvp`` would, with the task's own PATH.

    Raises:
        SpawnError: ``not found: NAME`` or ``permission denied: NAME``.
    """
    if not name:
        raise SpawnError("empty command", errno.ENOENT)
    if "/" in name:
        return name
    denied = False
    for entry in env.get("PATH", os.defpath).split(":"):
        candidate = os.path.join(cwd, entry or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if os.access(candidate, os.X_OK):
            return candidate
        denied = True
    if denied:
        raise SpawnError(f"permission denied: {name}", errno.EACCES)
    raise SpawnError(f"not found: {name}", errno.ENOENT)


def _spawn_error(err: int, name: str, path: str, cwd: str) -> SpawnError:
    """Turn a ``posix_spawn`` error number into a user-facing :class:`SpawnError`."""
    if err in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
        try:
            st = os.stat(cwd)
        except FileNotFoundError:
            return SpawnError(f"working directory not found: {cwd}", err)
        except NotADirectoryError:
            return SpawnError(f"working directory not found: {cwd}", err)
        except PermissionError:
            return SpawnError(f"permission denied: working directory {cwd}", err)
        if not stat.S_ISDIR(st.st_mode):
            return SpawnError(f"working directory is not a directory: {cwd}", err)
        if not os.access(cwd, os.X_OK):
            return SpawnError(f"permission denied: working directory {cwd}", err)
    if err == errno.ENOENT:
        full = path if os.path.isabs(path) else os.path.join(cwd, path)
        if os.path.lexists(full):
            return SpawnError(f"not found: interpreter of {name}", err)
        return SpawnError(f"not found: {name}", err)
    if err == errno.EACCES:
        return SpawnError(f"permission denied: {name}", err)
    if err == errno.ENOEXEC:
        return SpawnError(f"cannot execute {name}: not an executable format", err)
    return SpawnError(f"cannot start {name}: {os.strerror(err)}", err)


def _encode_argv(spec: ProcessSpec) -> tuple[list[bytes], list[bytes]]:
    try:
        argv = [os.fsencode(a) for a in spec.argv]
        envp = [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in spec.env.items()]
    except (UnicodeError, TypeError) as exc:
        raise SpawnError(f"cannot encode the command line: {exc}") from None
    if any(b"\0" in a for a in argv) or any(b"\0" in e for e in envp):
        raise SpawnError("the command line or environment contains a NUL byte")
    if any(b"=" in os.fsencode(k) or not k for k in spec.env):
        raise SpawnError("an environment variable name is empty or contains '='")
    return argv, envp


def _decode_status(status: int) -> ExitStatus:
    if os.WIFSIGNALED(status):
        return ExitStatus(code=None, signal=os.WTERMSIG(status))
    return ExitStatus(code=os.WEXITSTATUS(status), signal=None)


class _ExitWatch:
    """Reaps one child: a pidfd on the event loop, or a thread when pidfds are missing."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pid: int) -> None:
        self.loop = loop
        self.pid = pid
        self.exited: asyncio.Future[ExitStatus] = loop.create_future()
        """Resolved with the status once the child has been reaped."""
        try:
            self._pidfd = os.pidfd_open(pid)
        except OSError:
            self._pidfd = -1
            thread = threading.Thread(
                target=self._wait_thread, name=f"devster-wait-{pid}", daemon=True
            )
            thread.start()
        else:
            loop.add_reader(self._pidfd, self._on_ready)

    def _on_ready(self) -> None:
        try:
            wpid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            # Reaped by somebody else (a foreign SIGCHLD handler): the status is lost.
            self._set(ExitStatus(code=-1, signal=None))
            return
        if wpid:
            self._set(_decode_status(status))

    def _set(self, status: ExitStatus) -> None:
        if self._pidfd >= 0:
            self.loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1
        if not self.exited.done():
            self.exited.set_result(status)

    def _wait_thread(self) -> None:
        try:
            _, status = os.waitpid(self.pid, 0)
            result = _decode_status(status)
        except ChildProcessError:
            result = ExitStatus(code=-1, signal=None)
        try:
            self.loop.call_soon_threadsafe(self._set, result)
        except RuntimeError:
            return  # the loop is closed: nobody is waiting any more

    def close(self) -> None:
        """Stop watching (the loop is going away)."""
        if self._pidfd >= 0:
            self.loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1


class _Guard:
    """The executor's end of the guard pipe (see :mod:`devster_tui.executors.guard`)."""

    def __init__(self, libc: _Libc) -> None:
        r, w = _pipe()
        try:
            exe = os.fsencode(sys.executable)
            if not exe:
                raise SpawnError("cannot start the process guard: no Python executable")
            argv = [exe, b"-I", b"-S", os.fsencode(_guard.__file__)]
            envp = [b"PATH=" + os.fsencode(os.defpath)]
            pid, err = libc.spawn(exe, argv, envp, b"/", (r, None, None))
        finally:
            os.close(r)
        if err:
            os.close(w)
            raise SpawnError(f"cannot start the process guard: {os.strerror(err)}", err)
        os.set_blocking(w, False)
        self.pid = pid
        """Process id of the guard."""
        self._fd = w
        self._pending = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writing = False

    @property
    def alive(self) -> bool:
        """True while the pipe to the guard is open."""
        return self._fd >= 0

    def add(self, pgid: int, start: int | None, inode: int | None = None) -> None:
        """Record a new group (and the inode of its stdout pipe)."""
        tail = "" if inode is None else f" {inode}"
        self._send(f"+{pgid} {'' if start is None else start}{tail}\n".encode())

    def send(self, line: bytes) -> None:
        """Send one protocol line (see :mod:`devster_tui.executors.guard`)."""
        self._send(line)

    def remove(self, pgid: int) -> None:
        """Forget a group that has ended."""
        self._send(f"-{pgid}\n".encode())

    def _send(self, line: bytes) -> None:
        # Written at once, not coalesced: between a spawn and the next loop iteration a
        # SIGKILL of devster must already find the group recorded.  A write costs ~10 us
        # (the guard wakes up), small next to the ~450 us of the spawn itself.
        if self._fd < 0:
            return
        self._pending += line
        if not self._writing:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                self._loop = None
            self._flush()

    def _flush(self) -> None:
        while self._pending and self._fd >= 0:
            # Whole lines of at most PIPE_BUF bytes: such a write is all or nothing.
            end = self._pending.rfind(b"\n", 0, select.PIPE_BUF) + 1
            try:
                os.write(self._fd, self._pending[:end])
            except BlockingIOError:
                if not self._writing and self._loop is not None:
                    self._writing = True
                    self._loop.add_writer(self._fd, self._flush)
                return
            except OSError:
                self._drop()
                return
            del self._pending[:end]
        if self._writing and self._loop is not None:
            self._writing = False
            self._loop.remove_writer(self._fd)

    def _drop(self) -> None:
        if self._fd >= 0:
            if self._writing and self._loop is not None:
                self._loop.remove_writer(self._fd)
                self._writing = False
            os.close(self._fd)
            self._fd = -1
        self._pending.clear()

    def close(self) -> None:
        """Close the pipe: the guard kills every group still recorded, then exits."""
        if self._fd >= 0 and self._pending:
            os.set_blocking(self._fd, True)
            try:
                os.write(self._fd, bytes(self._pending))
            except OSError:
                pass
        self._drop()

    def reap(self) -> bool:
        """Collect the guard's exit status if it has ended; True once it has."""
        try:
            wpid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return True
        return wpid != 0


class LocalProcess:
    """A task running on this machine as the leader of its own session and process group
    (and, with cgroup v2, the only way into its own cgroup)."""

    def __init__(
        self,
        *,
        spec: ProcessSpec,
        pid: int,
        streams: Mapping[int, _Stream],
        stdin_fd: int | None,
        on_output: OutputSink,
        on_eof: EofSink,
        executor: LocalExecutor,
        drain_window: float,
        scope: RunScope,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._spec = spec
        self._pid = pid
        self._scope = scope
        self._kill_why = "stop timeout"
        self._executor = executor
        self._on_output = on_output
        self._on_eof = on_eof
        self._drain_window = drain_window
        self._streams: dict[int, _Stream] = dict(streams)
        self._all_eof = asyncio.Event()
        self._stdin_fd = stdin_fd
        self._stdin_lock = asyncio.Lock()
        self._stdin_waiter: asyncio.Future[None] | None = None
        self._group_gone = False
        self._kill_at = float("inf")
        self._terminator: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[Any] | None = None
        self._paused = False
        self._reading_to_end = False
        self.stop_requested = False
        """True once :meth:`stop` was called (or leftovers after an exit were ended)."""
        for fd, stream in self._streams.items():
            os.set_blocking(fd, False)
            self._loop.add_reader(fd, self._on_readable, fd, stream)
        if not self._streams:
            self._all_eof.set()
        self._watch = _ExitWatch(self._loop, pid)
        self._finisher = self._loop.create_task(self._finish(), name=f"devster-finish-{pid}")

    # -- Process protocol -------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """Process id of the group leader."""
        return self._pid

    @property
    def pgid(self) -> int | None:
        """Process group id (equal to the pid: the task is a session leader)."""
        return self._pid

    @property
    def cgroup(self) -> str | None:
        """The run's cgroup directory (None without cgroup v2)."""
        run = self._scope.cgroup
        return None if run is None else str(run.path)

    def escapees(self) -> dict[int, int]:
        """Live processes of this run outside its process group (pid -> start time)."""
        return self._scope.escapees()

    @property
    def returncode(self) -> ExitStatus | None:
        """How the leader ended, once it has been reaped (output may still be draining)."""
        fut = self._watch.exited
        return fut.result() if fut.done() else None

    async def wait(self) -> ExitStatus:
        """Wait for the leader's exit, the end of its whole group and the drained output.

        Group members left behind by a leader that exited on its own are ended like a stop
        (the task's stop signal, its timeout, then SIGKILL): a task never leaves orphans.
        """
        return await asyncio.shield(self._finisher)

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the whole process group; a no-op once it has ended.

        SIGKILL goes to every process of the run, escapees included (a reported kill).
        """
        if self._finisher.done():
            return
        if signum == signal.SIGKILL:
            self._signal_all(signum, "killed")
        else:
            self._signal_group(signum)

    async def stop(self, signum: int, grace: float) -> ExitStatus:
        """Signal the group, wait up to ``grace`` seconds, then SIGKILL the whole group.

        A second call while a stop is under way sends its signal too and can only bring the
        SIGKILL forward (``stop(SIGKILL, 0)`` kills at once).
        """
        if self._finisher.done():
            return self._finisher.result()
        self.stop_requested = True
        if signum == signal.SIGKILL and grace <= 0:
            self._kill_why = "killed"
        if self._terminator is None:
            self._terminator = self._loop.create_task(self._terminate(signum, grace))
        else:
            self._signal_all(signum, self._kill_why)
            self._kill_at = min(self._kill_at, self._loop.time() + max(grace, 0.0))
            if self._wake is not None and not self._wake.done():
                self._wake.set_result(None)
        await asyncio.shield(self._terminator)
        return await asyncio.shield(self._finisher)

    async def write_stdin(self, data: bytes) -> None:
        """Write ``data`` to the task's stdin, waiting while the pipe is full.

        Raises:
            BrokenPipeError: when stdin is closed or the process no longer reads it.
        """
        async with self._stdin_lock:
            view = memoryview(data)
            while view:
                fd = self._stdin_fd
                if fd is None:
                    raise BrokenPipeError(errno.EPIPE, "stdin is closed")
                try:
                    written = os.write(fd, view)
                except BlockingIOError:
                    await self._stdin_writable(fd)
                    continue
                view = view[written:]

    def close_stdin(self) -> None:
        """Close stdin: the process reads end of file."""
        fd = self._stdin_fd
        if fd is None:
            return
        self._stdin_fd = None
        waiter = self._stdin_waiter
        if waiter is not None:
            self._loop.remove_writer(fd)
            if not waiter.done():
                waiter.set_exception(BrokenPipeError(errno.EPIPE, "stdin is closed"))
            self._stdin_waiter = None
        os.close(fd)

    def pause_output(self) -> None:
        """Stop reading stdout and stderr: their pipes fill and the group blocks in write().

        The readers are taken off the event loop, so the output path itself costs nothing
        more.  Once the whole group is gone the pipes are read to the end anyway (see
        :meth:`_read_to_end`): a paused process never holds up :meth:`wait` or :meth:`stop`.
        """
        if self._paused:
            return
        self._paused = True
        if not self._reading_to_end:
            for fd in self._streams:
                self._loop.remove_reader(fd)

    def resume_output(self) -> None:
        """Read stdout and stderr again after :meth:`pause_output`."""
        if not self._paused:
            return
        self._paused = False
        if not self._reading_to_end:
            self._add_readers()

    # -- internals --------------------------------------------------------------------------

    def _add_readers(self) -> None:
        for fd, stream in self._streams.items():
            self._loop.add_reader(fd, self._on_readable, fd, stream)

    def _read_to_end(self) -> None:
        """The group is gone: what is left in the pipes (bounded by their size) is read even
        while output is paused, so that end of file arrives."""
        if self._reading_to_end:
            return
        self._reading_to_end = True
        if self._paused:
            self._add_readers()

    async def _stdin_writable(self, fd: int) -> None:
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._stdin_waiter = waiter

        def ready() -> None:
            if not waiter.done():
                waiter.set_result(None)

        self._loop.add_writer(fd, ready)
        try:
            await waiter
        finally:
            if self._stdin_fd == fd:
                self._loop.remove_writer(fd)
            self._stdin_waiter = None

    def _on_readable(self, fd: int, stream: _Stream) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._on_output(stream, data)
        else:
            self._close_stream(fd)

    def _close_stream(self, fd: int) -> None:
        stream = self._streams.pop(fd, None)
        if stream is None:
            return
        self._loop.remove_reader(fd)
        os.close(fd)
        if not self._streams:
            self._all_eof.set()
        self._on_eof(stream)

    def _abandon_streams(self) -> None:
        """Take what is buffered in each pipe, then close it even though it is still open."""
        for fd in list(self._streams):
            self._loop.remove_reader(fd)
            stream = self._streams[fd]
            for _ in range(64):  # bounded: a writer that escaped the group may never stop
                try:
                    data = os.read(fd, READ_SIZE)
                except OSError:
                    break
                if not data:
                    break
                self._on_output(stream, data)
            self._close_stream(fd)

    def _signal_group(self, signum: int) -> None:
        """``signum`` to the process group only (what a user's signal reaches)."""
        if self._group_gone:
            return
        try:
            os.killpg(self._pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def _signal_all(self, signum: int, why: str) -> None:
        """``signum`` to every process of the run: the group and its escapees."""
        if not self._group_gone:
            self._scope.signal(signum, why)

    def _group_alive(self) -> bool:
        """True while a process of the run (other than an unreaped leader) may run."""
        if self._group_gone:
            return False
        if not self._watch.exited.done():
            return True
        if self._scope.alive():
            return True
        self._group_gone = True
        return False

    async def _terminate(self, signum: int, grace: float) -> None:
        """End the whole group: ``signum``, then SIGKILL from ``grace`` seconds on."""
        loop = self._loop
        exited = self._watch.exited
        self._kill_at = loop.time() + max(grace, 0.0)
        self._signal_all(signum, self._kill_why)
        pause = 0.001
        while self._group_alive():
            now = loop.time()
            if now >= self._kill_at + _GIVE_UP:
                return  # members we may not signal (another user's): nothing more to do
            if now >= self._kill_at:
                self._signal_all(signal.SIGKILL, self._kill_why)
                timeout = pause
            elif exited.done():
                timeout = min(pause, self._kill_at - now)
            else:
                timeout = self._kill_at - now
            if exited.done():
                # Members other than the leader give no event: poll them, backing off.
                await asyncio.sleep(timeout)
                pause = min(pause * 2, _POLL_MAX)
            else:
                # The leader's exit is an event; a second stop wakes this up too.
                wake: asyncio.Future[Any] = loop.create_future()
                self._wake = wake
                await asyncio.wait(
                    [exited, wake], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                self._wake = None

    async def _finish(self) -> ExitStatus:
        try:
            status = await self._watch.exited
            if self._terminator is None:
                self._scope.escapees()  # fallback: find them while they can be attributed
            if self._terminator is None and self._group_alive():
                self.stop_requested = True
                self._terminator = self._loop.create_task(
                    self._terminate(self._spec.stop_signal, self._spec.stop_timeout)
                )
            if self._terminator is not None:
                await self._terminator
            self._read_to_end()
            if not self._all_eof.is_set():
                try:
                    await asyncio.wait_for(self._all_eof.wait(), self._drain_window)
                except TimeoutError:
                    self._abandon_streams()
            return status
        finally:
            self._release()

    def _release(self) -> None:
        self._watch.close()
        self.close_stdin()
        if self._streams:
            self._abandon_streams()
        if not self._group_alive():
            # Cancelled before the group ended (the loop is shutting down): the record
            # stays with the guard, which kills the group when the executor closes.
            self._scope.close()
            self._executor._group_ended(self._pid)


class LocalExecutor:
    """Starts processes on this machine (see the module docstring for how and why).

    Call :meth:`aclose` (or :meth:`close`) when the engine shuts down: the guard process
    then kills whatever is still running and exits.
    """

    def __init__(
        self,
        *,
        guard: bool = True,
        listener: GroupListener | None = None,
        drain_window: float = DRAIN_WINDOW,
        cgroups: bool | None = None,
        on_kill: KillSink | None = None,
    ) -> None:
        """Create the executor.

        Args:
            guard: Start the guard process (on the first spawn) so that no task survives
                devster.  Only tests turn this off.
            listener: Told about each group started and ended (e.g.
                :class:`devster_tui.engine.procs.ProcRegistry`).
            drain_window: Seconds to wait for end of file once a whole group is gone.
            cgroups: False: never use cgroup v2 (process groups and a subreaper only);
                None: use it where the machine offers it and ``DEVSTER_CGROUPS`` is not
                ``off``.
            on_kill: Told about every process ended with SIGKILL and every escapee ended.
        """
        self._use_guard = guard
        self._guard: _Guard | None = None
        self._listener = listener
        self._drain_window = drain_window
        self._live: dict[int, LocalProcess] = {}
        self._want_cgroups = cgroups is not False
        self._tree: CgroupTree | None = None
        self._set_up = False
        self._subreaper = False
        self._reaper: asyncio.TimerHandle | None = None
        self._on_kill = on_kill

    @property
    def guard_pid(self) -> int | None:
        """Process id of the guard, once started."""
        return None if self._guard is None else self._guard.pid

    @property
    def cgroup_path(self) -> str | None:
        """This engine's cgroup subtree (None before the first spawn or without cgroup v2)."""
        return None if self._tree is None else str(self._tree.path)

    @property
    def processes(self) -> tuple[LocalProcess, ...]:
        """Processes whose group has not ended yet."""
        return tuple(self._live.values())

    def start_guard(self) -> int | None:
        """Start the guard now instead of at the first spawn; returns its pid.

        Raises:
            SpawnError: when the guard cannot be started.
        """
        if self._use_guard and (self._guard is None or not self._guard.alive):
            self._guard = _Guard(_libc())
            if self._tree is not None:
                self._guard.send(b"C " + os.fsencode(self._tree.path) + b"\n")
        return self.guard_pid

    def _setup(self) -> None:
        """Before the first spawn: the guard, then the cgroup subtree or the subreaper.

        The subtree is told to the guard and the listener before any task is spawned into
        it, so a SIGKILL of devster at any later moment finds it recorded.
        """
        self.start_guard()
        if self._set_up:
            return
        self._set_up = True
        self._tree = CgroupTree.create() if self._want_cgroups else None
        if self._tree is not None:
            path = os.fsencode(self._tree.path)
            if self._guard is not None:
                self._guard.send(b"C " + path + b"\n")
            if self._listener is not None:
                self._listener.cgroup_created(os.fsdecode(path))
            return
        self._subreaper = _set_subreaper(True)

    def _known(self) -> set[int]:
        """Children that are not adopted escapees: task leaders and the guard."""
        known = set(self._live)
        if self._guard is not None:
            known.add(self._guard.pid)
        return known

    def _reap_tick(self) -> None:
        """Fallback: reap adopted escapees that ended on their own (no zombies pile up)."""
        self._reaper = None
        reap_adopted(self._known())
        if self._live:
            loop = asyncio.get_running_loop()
            self._reaper = loop.call_later(_REAP_EVERY, self._reap_tick)

    def _place(self, task: str) -> RunCgroup | None:
        """The cgroup for a new run of ``task`` (None when it cannot be created)."""
        if self._tree is None:
            return None
        try:
            return self._tree.new_run(task)
        except OSError:
            return None

    def _spawn_into(
        self, run: RunCgroup | None, spawn: Callable[[], tuple[int, int]]
    ) -> tuple[int, int, bool]:
        """Call ``spawn()`` with the engine inside ``run``, so the child is born there.

        Returns:
            ``spawn()``'s ``(pid, errno)`` and whether the child was born in ``run`` (not
            when the engine may not move into it).

        Raises:
            SpawnError: when the engine cannot move back to its own cgroup (the child is
                killed, and no later spawn uses cgroups: the engine must never sit in a
                cgroup that is killed).
        """
        tree = self._tree
        if run is None or tree is None:
            return (*spawn(), False)
        try:
            tree.enter(run)
        except OSError:
            return (*spawn(), False)
        try:
            result = spawn()
        except BaseException:
            self._leave(tree)
            raise
        if not self._leave(tree):
            pid = result[0]
            if pid:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            raise SpawnError("cannot move devster back out of the task's cgroup")
        return (*result, True)

    def _leave(self, tree: CgroupTree) -> bool:
        try:
            tree.leave()
        except OSError:
            self._tree = None
            if self._guard is not None:
                self._guard.send(b"C\n")  # the engine is in the subtree: never kill it
            return False
        return True

    async def spawn(
        self, spec: ProcessSpec, on_output: OutputSink, on_eof: EofSink
    ) -> LocalProcess:
        """Start ``spec`` as a new session and process group (in a cgroup of its own).

        Raises:
            SpawnError: ``not found: NAME``, ``permission denied: NAME``, ``working
                directory not found: DIR`` ... (never a fake exit status).
        """
        if not spec.argv:
            raise SpawnError("empty command", errno.ENOENT)
        libc = _libc()
        argv, envp = _encode_argv(spec)
        name = spec.argv[0]
        path = _resolve(name, spec.env, spec.cwd)
        self._setup()
        run = self._place(spec.task)
        inode: int | None = None
        child_ends: list[int] = []
        parent_ends: list[int] = []
        try:
            out_r, out_w = _pipe()
            parent_ends.append(out_r)
            if len(self._live) < _BIG_PIPES:
                _grow_pipe(out_r)
            child_ends.append(out_w)
            err_r, err_w = _pipe()
            parent_ends.append(err_r)
            child_ends.append(err_w)
            in_r: int | None = None
            in_w: int | None = None
            if spec.stdin == "pipe":
                in_r, in_w = _pipe()
                parent_ends.append(in_w)
                child_ends.append(in_r)
            if run is None:
                # No cgroup: the child exists before its pid is known.  Its stdout pipe is
                # known already, and the guard kills whatever holds it.
                inode = os.fstat(out_w).st_ino
                if self._guard is not None:
                    self._guard.send(f"?{inode}\n".encode())
            fds = (in_r, out_w, err_w)
            pid, err, placed = self._spawn_into(
                run,
                lambda: libc.spawn(os.fsencode(path), argv, envp, os.fsencode(spec.cwd), fds),
            )
        except BaseException:
            for fd in parent_ends:
                os.close(fd)
            if run is not None:
                run.remove()
            raise
        finally:
            for fd in child_ends:
                os.close(fd)
        if err:
            for fd in parent_ends:
                os.close(fd)
            if run is not None:
                run.remove()
            raise _spawn_error(err, name, path, spec.cwd)
        if run is not None and not placed:
            run.remove()
            run = None
        if self._guard is not None:
            self._guard.add(pid, _guard.start_time(pid), inode)
        if self._listener is not None:
            self._listener.group_started(
                spec.task, pid, pid, None if run is None else str(run.path)
            )
        if self._tree is None and self._reaper is None and self._subreaper:
            self._reaper = asyncio.get_running_loop().call_later(_REAP_EVERY, self._reap_tick)
        if in_w is not None:
            os.set_blocking(in_w, False)
        proc = LocalProcess(
            spec=spec,
            pid=pid,
            streams={out_r: "stdout", err_r: "stderr"},
            stdin_fd=in_w,
            on_output=on_output,
            on_eof=on_eof,
            executor=self,
            drain_window=self._drain_window,
            scope=RunScope(
                task=spec.task,
                pgid=pid,
                cgroup=run,
                pipe_inode=inode,
                known=self._known,
                note=None if self._guard is None else self._guard.send,
                sink=self._on_kill,
            ),
        )
        self._live[pid] = proc
        return proc

    def _group_ended(self, pgid: int) -> None:
        self._live.pop(pgid, None)
        if self._guard is not None:
            self._guard.remove(pgid)
        if self._listener is not None:
            self._listener.group_ended(pgid, pgid)

    def _release_tree(self) -> None:
        """Remove the cgroup subtree once its runs are gone; stop being a subreaper."""
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        if self._tree is not None:
            if not self._live:
                self._tree.remove()  # else the guard ends and removes what is left
            self._tree.close()
            self._tree = None
        if self._subreaper and not self._live:
            self._subreaper = not _set_subreaper(False)

    def close(self) -> None:
        """Close the guard pipe without waiting: the guard kills what is left and exits."""
        self._release_tree()
        if self._guard is not None:
            self._guard.close()
            self._guard.reap()

    async def aclose(self, within: float = 2.0) -> None:
        """Close the guard pipe and wait (up to ``within`` seconds) for the guard to exit."""
        self._release_tree()
        guard = self._guard
        if guard is None:
            return
        guard.close()
        loop = asyncio.get_running_loop()
        watch = _ExitWatch(loop, guard.pid)
        try:
            await asyncio.wait([watch.exited], timeout=within)
        finally:
            watch.close()
        self._guard = None
