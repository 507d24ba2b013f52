"""Every process of one task run, found and ended: its cgroup, or its group plus escapees.

Why: a task is more than its process group.  ``setsid`` and double forks take processes
out of it, and a stop, an exit or ``devster down`` must end them too, each recorded as a
:class:`KillNotice` (the engine turns it into a ``task.killed`` event).  With cgroup v2
(:mod:`devster_tui.executors.cgroup`) the run's cgroup *is* the answer: its
``cgroup.procs`` lists every process, and ``cgroup.kill`` ends them all.  Without it, the
run's processes are found in ``/proc``: the group's members, whatever descends from them
(a ``setsid`` child of a running shell), and the engine's adopted children (the engine is a
child subreaper, so a double-forked orphan is reparented to it instead of to PID 1) that
are still in the task's session or hold its stdout pipe.  Those escapees are told to the
guard (``=PID START``), so a ``kill -9`` of devster still ends them.  What the fallback
cannot see: a process that left the session, let go of the pipe *and* whose parents all
exited before anyone looked.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from devster_tui.executors.cgroup import RunCgroup
from devster_tui.executors.guard import (
    ProcStat,
    descendants,
    group_exists,
    pipe_holders,
    proc_table,
    read_stat,
)

_PR_SET_CHILD_SUBREAPER = 36
_TABLE_TTL = 0.02
"""Seconds a ``/proc`` snapshot is reused (100 tasks stopping together scan it once)."""


@dataclass(frozen=True, slots=True)
class KillNotice:
    """Devster ended a process the hard way (SIGKILL), or ended one that escaped its task."""

    task: str
    """The process spec's task name (``api``, ``api:health``, ``api:stop``)."""
    pid: int
    """The process."""
    name: str
    """Its command name (``/proc/PID/comm``)."""
    signal: int
    """The signal sent (SIGKILL, or the stop signal for an escapee)."""
    why: str
    """``escaped`` (it had left the task's process group), ``stop timeout`` (still running
    when the stop's grace ran out) or ``killed`` (a stop with SIGKILL at once)."""


KillSink = Callable[[KillNotice], None]
"""Receives every :class:`KillNotice`."""

_table_cache: tuple[float, dict[int, ProcStat]] = (-1.0, {})


def _table() -> dict[int, ProcStat]:
    global _table_cache
    if time.monotonic() - _table_cache[0] > _TABLE_TTL:
        table = proc_table()
        _table_cache = (time.monotonic(), table)  # from the end of a scan that may be slow
    return _table_cache[1]


def comm(pid: int) -> str:
    """The command name of ``pid`` (``""`` when it is gone)."""
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().strip().decode("utf-8", "replace")
    except OSError:
        return ""


def set_subreaper(on: bool) -> bool:
    """Make this process a child subreaper (orphaned descendants reparent to it).

    Returns:
        Whether the kernel accepted it.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def own_children() -> list[int]:
    """The children of this process (``/proc/self/task/*/children``)."""
    found: list[int] = []
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/children", "rb") as f:
                found.extend(int(word) for word in f.read().split())
        except (OSError, ValueError):
            continue
    return found


def reap_adopted(known: Collection[int]) -> list[int]:
    """Reap zombie children that are adopted task processes, never the engine's own.

    An adopted child is recognised by its session: the engine's own helper children share
    the engine's session, a task's processes never do (every task starts a new one).

    Args:
        known: Children somebody else reaps (the executor's task leaders, the guard).

    Returns:
        The pids reaped.
    """
    me = os.getpid()
    mine = read_stat(me)
    reaped = []
    for pid in own_children():
        if pid in known:
            continue
        stat = read_stat(pid)
        if stat is None or stat.alive or stat.ppid != me:
            continue
        if mine is not None and stat.sid == mine.sid:
            continue
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        reaped.append(pid)
    return reaped


class RunScope:
    """The processes of one task run and how they end (see the module docstring)."""

    def __init__(
        self,
        *,
        task: str,
        pgid: int,
        cgroup: RunCgroup | None,
        pipe_inode: int | None,
        known: Callable[[], Collection[int]],
        note: Callable[[bytes], None] | None,
        sink: KillSink | None,
    ) -> None:
        """Describe a run just spawned.

        Args:
            task: The spec's task name (for notices).
            pgid: The run's process group (its leader's pid).
            cgroup: Its cgroup, or None for the fallback.
            pipe_inode: Inode of its stdout pipe (fallback: identifies adopted escapees).
            known: The executor's task leaders (never taken for another run's escapees).
            note: Writes a line to the guard (None without a guard).
            sink: Receives kill notices.
        """
        self.task = task
        self.pgid = pgid
        self.cgroup = cgroup
        self._inode = pipe_inode
        self._known = known
        self._note = note
        self._sink = sink
        self._escapees: dict[int, int] = {}  # pid -> start time (fallback)
        self._noticed: set[tuple[int, int]] = set()  # (pid, signal)

    # -- finding ----------------------------------------------------------------------------

    def escapees(self, *, scan: bool = True) -> dict[int, int]:
        """The run's live processes outside its process group, pid -> start time.

        Args:
            scan: Fallback only: look in ``/proc`` for new ones (else: the ones known).
        """
        if self.cgroup is not None:
            found = {}
            for pid in self.cgroup.pids():
                stat = read_stat(pid)
                if stat is not None and stat.alive and stat.pgid != self.pgid:
                    found[pid] = stat.start
            return found
        if scan:
            self._scan()
        return {pid: start for pid, start in self._escapees.items() if self._lives(pid, start)}

    def _scan(self) -> None:
        table = _table()
        me = os.getpid()
        mine = table.get(me)
        members = {pid for pid, stat in table.items() if stat.pgid == self.pgid}
        found = descendants(members, table)
        known = set(self._known())
        adopted = [
            pid
            for pid, stat in table.items()
            if stat.ppid == me
            and pid not in known
            and (mine is None or stat.sid != mine.sid)
            and stat.pgid != self.pgid
        ]
        found.update(pid for pid in adopted if table[pid].sid == self.pgid)
        if self._inode is not None:
            found |= pipe_holders({self._inode}, adopted)
        for pid in found:
            stat = table.get(pid)
            if stat is None or stat.pgid == self.pgid or pid in self._escapees:
                continue
            self._escapees[pid] = stat.start
            if self._note is not None:
                self._note(f"={pid} {stat.start}\n".encode())

    def _lives(self, pid: int, start: int) -> bool:
        stat = read_stat(pid)
        if stat is None or stat.start != start:
            return False
        if stat.alive:
            return True
        if stat.ppid == os.getpid():
            try:  # an adopted escapee that ended: nobody else reaps it
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        return False

    # -- ending -----------------------------------------------------------------------------

    def signal(self, signum: int, why: str, *, escapees: bool = True) -> None:
        """Send ``signum`` to the group and (with ``escapees``) to every escapee.

        SIGKILL goes to the whole cgroup at once, and each process it ends is noticed
        (``why`` for group members, ``escaped`` for the others); another signal is noticed
        only for escapees.
        """
        if signum == signal.SIGKILL:
            self._kill(why)
            return
        _killpg(self.pgid, signum)
        if not escapees:
            return
        for pid in self.escapees():
            self._notice(pid, signum, "escaped")
            _kill(pid, signum)

    def _kill(self, why: str) -> None:
        if self.cgroup is not None:
            for pid in self.cgroup.pids():
                stat = read_stat(pid)
                if stat is not None and stat.alive:
                    self._notice(pid, signal.SIGKILL, why if stat.pgid == self.pgid else "escaped")
            self.cgroup.kill()
            _killpg(self.pgid, signal.SIGKILL)
            return
        first = not any(sig == signal.SIGKILL for _, sig in self._noticed)
        if self._sink is not None and first:
            for pid, stat in _table().items():
                if stat.pgid == self.pgid:
                    self._notice(pid, signal.SIGKILL, why)
        _killpg(self.pgid, signal.SIGKILL)
        for pid in self.escapees(scan=first):
            self._notice(pid, signal.SIGKILL, "escaped")
            _kill(pid, signal.SIGKILL)

    def _notice(self, pid: int, signum: int, why: str) -> None:
        if self._sink is None or (pid, signum) in self._noticed:
            return
        self._noticed.add((pid, signum))
        self._sink(KillNotice(task=self.task, pid=pid, name=comm(pid), signal=signum, why=why))

    def alive(self) -> bool:
        """True while a process of the run (other than an unreaped leader) may run."""
        if self.cgroup is not None:
            return self.cgroup.populated()
        if group_exists(self.pgid):
            return True
        return bool(self.escapees(scan=False))

    def close(self) -> None:
        """The run has ended: remove its cgroup, let the guard forget its escapees."""
        if self.cgroup is not None:
            self.cgroup.remove()
        if self._note is not None:
            for pid in self._escapees:
                self._note(f"~{pid}\n".encode())
        self._escapees.clear()


def _killpg(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        return
