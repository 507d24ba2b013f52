"""Records of live task processes on disk, and the cleanup of orphans they make possible.

Why: the guard process kills every task when devster dies, but a guard can be killed too
(``kill -9`` of a whole session, an OOM kill).  So each engine also records the groups it
runs in ``STATE_DIR/procs/OWNER_PID.json`` (written atomically, mode 0600, directory
0700), and the next ``devster up`` calls :func:`cleanup_orphans` before it starts anything.
A record names the process by pid *and* start time (``/proc/PID/stat``) plus the boot id,
so a reused pid is never mistaken for a task.  One file per engine means two engines on the
same state directory never overwrite each other's records, and a live engine's records are
left alone.  The file is not fsynced: it must survive the death of devster, not of the
machine, and after a reboot the boot id no longer matches anyway.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devster_tui.executors.guard import group_exists, group_members, start_time

_FORMAT = 1


@dataclass(frozen=True, slots=True)
class ProcRecord:
    """One recorded process group."""

    task: str
    """The task it belongs to."""
    pid: int
    """Process id of the group leader."""
    pgid: int
    """Process group id (equal to ``pid`` for the local executor)."""
    start: int | None
    """The leader's start time in clock ticks since boot (None if it was already gone)."""


@dataclass(frozen=True, slots=True)
class OrphanInfo:
    """A process group left behind by an earlier devster and ended by :func:`cleanup_orphans`."""

    task: str
    """The task it belonged to."""
    pid: int
    """Process id of the recorded group leader."""
    pgid: int
    """Process group id."""
    pids: tuple[int, ...]
    """The members that were still running when the cleanup found them."""


def boot_id() -> str:
    """The kernel's boot id (changes at every boot), or ``""`` when unavailable."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


def procs_dir(state_dir: Path | str) -> Path:
    """The directory holding the records of every engine using ``state_dir``."""
    return Path(state_dir) / "procs"


class ProcRegistry:
    """This engine's record of live process groups; a ``GroupListener`` for the executor.

    Changes are written atomically, coalesced to one write per event-loop iteration (a
    rename costs ~1 ms on some file systems; 100 tasks starting together must not pay it
    100 times).  Between a change and its write, the guard process already holds the
    group, so a devster killed in that window still leaves nothing behind.
    """

    def __init__(self, state_dir: Path | str) -> None:
        """Create the registry (nothing is written before the first group starts).

        Args:
            state_dir: The project's state directory (``.devster``); created with mode
                0700 when missing.
        """
        self._dir = procs_dir(state_dir)
        self._owner_pid = os.getpid()
        self._owner_start = start_time(self._owner_pid)
        self._boot = boot_id()
        self._records: dict[int, ProcRecord] = {}
        self._flush_scheduled = False

    @property
    def path(self) -> Path:
        """The file this engine writes."""
        return self._dir / f"{self._owner_pid}.json"

    @property
    def records(self) -> tuple[ProcRecord, ...]:
        """The groups currently recorded."""
        return tuple(self._records.values())

    def group_started(self, task: str, pid: int, pgid: int) -> None:
        """Record a new group (called by the executor right after the spawn)."""
        self._records[pgid] = ProcRecord(task=task, pid=pid, pgid=pgid, start=start_time(pid))
        self._write()

    def group_ended(self, pid: int, pgid: int) -> None:
        """Forget a group whose members are all gone."""
        if self._records.pop(pgid, None) is not None:
            self._write()

    def close(self) -> None:
        """Remove this engine's file (at a clean shutdown, once every group has ended)."""
        self._records.clear()
        self._flush_scheduled = False
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def _write(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush()
            return
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._records and not self.path.exists():
            return
        _make_private_dir(self._dir)
        data = {
            "format": _FORMAT,
            "boot_id": self._boot,
            "owner": {"pid": self._owner_pid, "start": self._owner_start},
            "records": [
                {"task": r.task, "pid": r.pid, "pgid": r.pgid, "start": r.start}
                for r in self._records.values()
            ],
        }
        _write_private(self.path, json.dumps(data, separators=(",", ":")).encode())


def _make_private_dir(path: Path) -> None:
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)


def _write_private(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically with mode 0600."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, payload)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _load(path: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def _records_of(raw: dict[str, Any]) -> list[ProcRecord]:
    found = []
    for item in raw.get("records") or []:
        try:
            start = item.get("start")
            found.append(
                ProcRecord(
                    task=str(item["task"]),
                    pid=int(item["pid"]),
                    pgid=int(item["pgid"]),
                    start=None if start is None else int(start),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return found


def _owner_alive(raw: dict[str, Any]) -> bool:
    owner = raw.get("owner")
    if not isinstance(owner, dict):
        return False
    try:
        pid = int(owner["pid"])
    except (KeyError, TypeError, ValueError):
        return False
    now = start_time(pid)
    return now is not None and now == owner.get("start")


def orphan_members(record: ProcRecord) -> list[int]:
    """The live processes of a recorded group that still belong to it.

    The group is the recorded one when its leader still runs with the recorded start time.
    When the leader is gone, the group id can only have been reused if its number is now a
    process id again (a group id stays reserved while the group has members): then nothing
    is returned.  Members must also be in the session the task created (``sid == pgid``).
    """
    leader_start = start_time(record.pid)
    if leader_start is not None and leader_start != record.start:
        return []
    return [m.pid for m in group_members(record.pgid) if m.sid == record.pgid]


def cleanup_orphans(state_dir: Path | str, *, grace: float = 1.0) -> list[OrphanInfo]:
    """End every process group recorded by an engine that is no longer running.

    Each group found gets SIGTERM, then SIGKILL after ``grace`` seconds if it is still
    there.  Records of a live engine are left alone; records from an earlier boot are
    discarded.  This blocks for up to ``grace`` + 1 s: call it before the event loop runs
    or through ``asyncio.to_thread``.

    Args:
        state_dir: The project's state directory.
        grace: Seconds between SIGTERM and SIGKILL.

    Returns:
        One :class:`OrphanInfo` per group that had live members (for ``orphan.killed``).
    """
    folder = procs_dir(state_dir)
    if not folder.is_dir():
        return []
    boot = boot_id()
    found: list[OrphanInfo] = []
    done_files: list[Path] = []
    for path in sorted(folder.glob("*.json")):
        raw = _load(path)
        if raw is None:
            done_files.append(path)
            continue
        if raw.get("boot_id") != boot:
            done_files.append(path)
            continue
        if _owner_alive(raw):
            continue
        done_files.append(path)
        for record in _records_of(raw):
            pids = orphan_members(record)
            if pids:
                found.append(
                    OrphanInfo(task=record.task, pid=record.pid, pgid=record.pgid, pids=tuple(pids))
                )
    _end_groups([info.pgid for info in found], grace)
    for path in done_files:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    return found


def _end_groups(pgids: list[int], grace: float) -> None:
    """SIGTERM the groups, then SIGKILL whatever is left after ``grace`` seconds."""
    if not pgids:
        return
    for pgid in pgids:
        _killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    pending = [pgid for pgid in pgids if group_exists(pgid)]
    while pending and time.monotonic() < deadline:
        time.sleep(0.01)
        pending = [pgid for pgid in pending if group_exists(pgid)]
    deadline = time.monotonic() + 1.0
    while pending and time.monotonic() < deadline:
        for pgid in pending:
            _killpg(pgid, signal.SIGKILL)
        time.sleep(0.01)
        pending = [pgid for pgid in pending if group_exists(pgid)]


def _killpg(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return
