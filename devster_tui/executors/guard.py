"""The process guard: a tiny watchdog that kills every task process when devster dies.

Why: ``PR_SET_PDEATHSIG`` fires when the *thread* that created a child exits (not the
process) and reaches only that child, never the rest of its process group.  So the local
executor starts one guard per engine, in its own session (a terminal's Ctrl-C never reaches
it), with the read end of a pipe as its stdin, and tells it, one line each, what to kill:

- ``C PATH``: the engine's cgroup v2 subtree (every task run has a cgroup below it, and a
  task is in its cgroup from its first instruction on).  This alone covers everything,
  processes that called ``setsid`` or double-forked included.
- ``+PGID START [INODE]`` / ``-PGID``: a task's process group (and the inode of its stdout
  pipe), and its end.
- ``=PID START`` / ``~PID``: a single process that left its task's group (found by the
  executor without cgroups), and its end.
- ``?INODE``: a task is about to be spawned with that stdout pipe (without cgroups the pid
  is only known once the child runs; a process holding the pipe is that child).

When devster exits for any reason, ``SIGKILL`` included, the kernel closes the write end;
the guard's blocking read returns end of file, the guard kills the cgroup subtree (or,
without one, every recorded group, the processes descending from them, the recorded
escapees and whatever holds a recorded pipe), removes the cgroups and exits.  It costs no
CPU while it waits.

This file is also run as a script (``python -I -S guard.py``), so it imports only the
standard library; the ``/proc`` and cgroup helpers below are shared with the executor and
the engine.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field

_PROC = "/proc"


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields of ``/proc/PID/stat`` that process hygiene needs."""

    pid: int
    """Process id."""
    state: str
    """One-letter state (``R``, ``S``, ``Z`` ...)."""
    ppid: int
    """Parent process id."""
    pgid: int
    """Process group id."""
    sid: int
    """Session id."""
    start: int
    """Start time in clock ticks since boot: with ``pid`` it names a process uniquely."""

    @property
    def alive(self) -> bool:
        """True unless the process is a zombie (or dead) waiting to be reaped."""
        return self.state not in ("Z", "X", "x")


def read_stat(pid: int) -> ProcStat | None:
    """Read ``/proc/PID/stat``.

    Args:
        pid: The process id.

    Returns:
        The parsed fields, or None when the process does not exist (or cannot be read).
    """
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces and parentheses.
    end = raw.rfind(b")")
    if end < 0:
        return None
    fields = raw[end + 2 :].split()
    try:
        return ProcStat(
            pid=pid,
            state=fields[0].decode("ascii", "replace"),
            ppid=int(fields[1]),
            pgid=int(fields[2]),
            sid=int(fields[3]),
            start=int(fields[19]),
        )
    except (IndexError, ValueError):
        return None


def start_time(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot, or None if it is gone."""
    stat = read_stat(pid)
    return None if stat is None else stat.start


def all_pids() -> list[int]:
    """Every process id visible in ``/proc``."""
    try:
        names = os.listdir(_PROC)
    except OSError:
        return []
    return [int(name) for name in names if name.isdigit()]


def group_members(pgid: int, *, live_only: bool = True) -> list[ProcStat]:
    """The processes whose process group is ``pgid`` (a scan of ``/proc``).

    Args:
        pgid: The process group id.
        live_only: Leave out zombies, which no signal can end.

    Returns:
        The members found, in ``/proc`` order.
    """
    members: list[ProcStat] = []
    for pid in all_pids():
        stat = read_stat(pid)
        if stat is not None and stat.pgid == pgid and (stat.alive or not live_only):
            members.append(stat)
    return members


def group_exists(pgid: int) -> bool:
    """True while the group has a member that a signal can still end.

    ``killpg(pgid, 0)`` also succeeds for a group of zombies (a container whose PID 1 does
    not reap them), so a positive answer is confirmed by scanning ``/proc``.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return bool(group_members(pgid))


def kill_groups(groups: dict[int, int | None], *, timeout: float = 1.0) -> None:
    """SIGKILL every process group in ``groups`` until each is empty or ``timeout`` passes.

    Args:
        groups: pgid -> start time of the group leader (None when unknown).  A group whose
            pid is now held by a process with another start time was reused and is skipped:
            a group id cannot be reused while the group still has members.
        timeout: How long to keep killing (members may fork while they are being killed).
    """
    pending = dict(groups)
    deadline = time.monotonic() + timeout
    while pending:
        for pgid, start in list(pending.items()):
            if start is not None:
                now_start = start_time(pgid)
                if now_start is not None and now_start != start:
                    del pending[pgid]
                    continue
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                del pending[pgid]
            except PermissionError:
                del pending[pgid]
        if not pending or time.monotonic() >= deadline:
            return
        pending = {pgid: s for pgid, s in pending.items() if group_exists(pgid)}
        if pending:
            time.sleep(0.01)


def parse_command(line: bytes, groups: dict[int, int | None]) -> None:
    """Apply one ``+PGID START`` or ``-PGID`` line to ``groups``; ignore anything else."""
    records = GuardRecords(groups=groups)
    if line[:1] in (b"+", b"-"):
        records.apply(line)


@dataclass(slots=True)
class GuardRecords:
    """What the guard was told to kill (see the module docstring for the protocol)."""

    groups: dict[int, int | None] = field(default_factory=dict)
    """pgid -> start time of its leader."""
    singles: dict[int, int | None] = field(default_factory=dict)
    """pid -> start time of single processes that left their group."""
    inodes: dict[int, int] = field(default_factory=dict)
    """stdout pipe inode -> pgid of its task (0 while the spawn is under way)."""
    cgroup: str | None = None
    """The engine's cgroup subtree, if it has one."""

    def apply(self, line: bytes) -> None:
        """Apply one protocol line; junk is ignored."""
        parts = line.split()
        if not parts:
            return
        head, tag = parts[0], parts[0][:1]
        try:
            if tag == b"C":
                self.cgroup = os.fsdecode(line[1:].strip()) or None
            elif tag in (b"+", b"="):
                start = int(parts[1]) if len(parts) > 1 and parts[1] else None
                target = self.groups if tag == b"+" else self.singles
                target[int(head[1:])] = start
                if tag == b"+" and len(parts) > 2:
                    self.inodes[int(parts[2])] = int(head[1:])
            elif tag == b"-":
                pgid = int(head[1:])
                self.groups.pop(pgid, None)
                for inode in [i for i, g in self.inodes.items() if g == pgid]:
                    del self.inodes[inode]
            elif tag == b"~":
                self.singles.pop(int(head[1:]), None)
            elif tag == b"?":
                self.inodes[int(head[1:])] = 0
        except ValueError:
            return


def proc_table() -> dict[int, ProcStat]:
    """Every live process in ``/proc``, by pid."""
    table: dict[int, ProcStat] = {}
    for pid in all_pids():
        stat = read_stat(pid)
        if stat is not None and stat.alive:
            table[pid] = stat
    return table


def descendants(roots: set[int], table: dict[int, ProcStat]) -> set[int]:
    """The pids in ``table`` that descend from ``roots`` (the roots left out)."""
    children: dict[int, list[int]] = {}
    for stat in table.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found: set[int] = set()
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found and child not in roots:
                found.add(child)
                todo.append(child)
    return found


def pipe_holders(inodes: set[int], pids: list[int] | None = None) -> set[int]:
    """The processes with a descriptor on one of the pipes ``inodes`` (a ``/proc`` scan)."""
    if not inodes:
        return set()
    wanted = {f"pipe:[{inode}]" for inode in inodes}
    found: set[int] = set()
    for pid in all_pids() if pids is None else pids:
        try:
            fds = os.listdir(f"{_PROC}/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"{_PROC}/{pid}/fd/{fd}") in wanted:
                    found.add(pid)
                    break
            except OSError:
                continue
    return found


def kill_pids(pids: dict[int, int | None]) -> list[int]:
    """SIGKILL each pid whose start time is still the recorded one; returns those signalled."""
    killed = []
    for pid, start in pids.items():
        if pid == os.getpid():
            continue
        if start is not None and start_time(pid) != start:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue
        killed.append(pid)
    return killed


def cgroup_pids(path: str) -> list[int]:
    """The processes in the cgroup at ``path`` and every cgroup below it."""
    found: list[int] = []
    for folder, _dirs, _files in os.walk(path):
        try:
            with open(os.path.join(folder, "cgroup.procs"), "rb") as f:
                found.extend(int(word) for word in f.read().split())
        except (OSError, ValueError):
            continue
    return found


def cgroup_populated(path: str) -> bool:
    """True while a process runs in the cgroup at ``path`` or below (False once it is gone)."""
    try:
        with open(os.path.join(path, "cgroup.events"), "rb") as f:
            return b"populated 1" in f.read()
    except OSError:
        return False


def kill_cgroup(path: str) -> bool:
    """SIGKILL every process in the cgroup subtree at ``path``.

    ``cgroup.kill`` (Linux 5.14) does it atomically, forks in flight included; without it
    every ``cgroup.procs`` below is read and each pid killed, in rounds, by the caller.

    Returns:
        True when ``cgroup.kill`` did it.
    """
    try:
        fd = os.open(os.path.join(path, "cgroup.kill"), os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        fd = -1
    if fd >= 0:
        try:
            os.write(fd, b"1")
            return True
        except OSError:
            pass
        finally:
            os.close(fd)
    for pid in cgroup_pids(path):
        if pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue
    return False


def end_cgroup(path: str, timeout: float = 1.0) -> bool:
    """Kill the subtree at ``path`` until it is empty (or ``timeout`` passes), then remove it.

    Returns:
        True when the subtree is gone (or was never there).
    """
    deadline = time.monotonic() + timeout
    while cgroup_populated(path):
        kill_cgroup(path)
        if time.monotonic() >= deadline:
            break
        time.sleep(0.002)
    return remove_cgroup(path)


def remove_cgroup(path: str) -> bool:
    """Remove the empty cgroup at ``path`` and every cgroup below it (deepest first).

    Returns:
        True when nothing is left (a cgroup that still has processes stays).
    """
    ok = True
    for folder, _dirs, _files in os.walk(path, topdown=False):
        try:
            os.rmdir(folder)
        except FileNotFoundError:
            continue
        except OSError:
            ok = False
    return ok


def kill_records(records: GuardRecords, *, timeout: float = 1.0) -> None:
    """Kill everything ``records`` names; used by the guard at end of file.

    With a cgroup subtree that is the whole job.  Without one: the recorded groups, the
    processes that descend from their members, the recorded single processes and whatever
    holds a recorded pipe, in rounds until no new one turns up (they may fork meanwhile).
    """
    if records.cgroup is not None:
        # Every task process is in the subtree (from its first instruction on).
        kill_cgroup(records.cgroup)
        kill_groups(records.groups, timeout=0.0)
        end_cgroup(records.cgroup, timeout)
        return
    singles = dict(records.singles)
    deadline = time.monotonic() + timeout
    while True:
        table = proc_table()
        groups = {
            pgid for pgid, start in records.groups.items() if start_time(pgid) in (None, start)
        }
        members = {pid for pid, stat in table.items() if stat.pgid in groups}
        found = descendants(members, table) | pipe_holders(set(records.inodes), list(table))
        fresh = {pid: table[pid].start for pid in found if pid in table and pid not in singles}
        singles.update(fresh)
        kill_pids(singles)
        kill_groups(records.groups, timeout=0.0)
        if not fresh and not members:
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.005)


def main() -> int:
    """Run the guard: read commands from stdin until end of file, then kill what remains."""
    # Own session already (spawned with setsid); also ignore the terminal's signals in case
    # someone runs the guard by hand.
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(signum, signal.SIG_IGN)
    records = GuardRecords()
    pending = b""
    while True:
        try:
            chunk = os.read(0, 65536)
        except OSError:
            break
        if not chunk:
            break
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            records.apply(line)
    # Every command is written with one write() of less than PIPE_BUF bytes, so a trailing
    # fragment without a newline cannot be a whole command: it is ignored.
    kill_records(records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
