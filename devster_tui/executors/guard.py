"""The process guard: a tiny watchdog that kills every task group when devster dies.

Why: ``PR_SET_PDEATHSIG`` fires when the *thread* that created a child exits (not the
process) and reaches only that child, never the rest of its process group.  So the local
executor starts one guard per engine, in its own session (a terminal's Ctrl-C never reaches
it), with the read end of a pipe as its stdin.  The executor writes ``+PGID START`` when it
spawns a group and ``-PGID`` when the group has ended.  When devster exits for any reason,
``SIGKILL`` included, the kernel closes the write end; the guard's blocking read returns
end of file, and the guard SIGKILLs every group still recorded and exits.  It costs no CPU
while it waits.

This file is also run as a script (``python -I -S guard.py``), so it imports only the
standard library; the ``/proc`` helpers below are shared with the executor and the engine.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass

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
    """Apply one protocol line (``+PGID START`` or ``-PGID``) to ``groups``; ignore junk."""
    parts = line.split()
    if not parts:
        return
    head = parts[0]
    try:
        if head[:1] == b"+":
            start = int(parts[1]) if len(parts) > 1 else None
            groups[int(head[1:])] = start
        elif head[:1] == b"-":
            groups.pop(int(head[1:]), None)
    except ValueError:
        return


def main() -> int:
    """Run the guard: read commands from stdin until end of file, then kill what remains."""
    # Own session already (spawned with setsid); also ignore the terminal's signals in case
    # someone runs the guard by hand.
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(signum, signal.SIG_IGN)
    groups: dict[int, int | None] = {}
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
            parse_command(line, groups)
    # Every command is written with one write() of less than PIPE_BUF bytes, so a trailing
    # fragment without a newline cannot be a whole command: it is ignored.
    kill_groups(groups)
    return 0


if __name__ == "__main__":
    sys.exit(main())
