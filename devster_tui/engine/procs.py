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

With cgroup v2 the file also names the engine's cgroup subtree, written *before* the
first task is spawned into it, and :func:`cleanup_orphans` ends and removes the subtree of
a dead engine, plus any ``devster-PID-START-N`` subtree in devster's own cgroup whose
engine no longer runs (one killed before its file was written): whatever a task forked,
``setsid`` or not, is in there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devster_tui.executors.cgroup import dead_engine_trees, engine_owner, own_cgroup
from devster_tui.executors.guard import (
    cgroup_pids,
    cgroup_populated,
    end_cgroup,
    group_exists,
    group_members,
    read_stat,
    start_time,
)

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
    cgroup: str | None = None
    """The run's cgroup directory (cgroup v2 only)."""


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
    killed: tuple[int, ...] = ()
    """The ones that were still there after the grace period and got SIGKILL."""


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
        self._cgroup: str | None = None
        self._flush_scheduled = False

    @property
    def path(self) -> Path:
        """The file this engine writes."""
        return self._dir / f"{self._owner_pid}.json"

    @property
    def records(self) -> tuple[ProcRecord, ...]:
        """The groups currently recorded."""
        return tuple(self._records.values())

    def group_started(self, task: str, pid: int, pgid: int, cgroup: str | None = None) -> None:
        """Record a new group (called by the executor right after the spawn)."""
        self._records[pgid] = ProcRecord(
            task=task, pid=pid, pgid=pgid, start=start_time(pid), cgroup=cgroup
        )
        self._write()

    def cgroup_created(self, path: str) -> None:
        """Record the engine's cgroup subtree, on disk at once (before the first spawn)."""
        self._cgroup = path
        self._flush()

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
        if not self._records and self._cgroup is None and not self.path.exists():
            return
        _make_private_dir(self._dir)
        data: dict[str, Any] = {
            "format": _FORMAT,
            "boot_id": self._boot,
            "owner": {"pid": self._owner_pid, "start": self._owner_start},
            "records": [_record_json(r) for r in self._records.values()],
        }
        if self._cgroup is not None:
            data["cgroup"] = self._cgroup
        _write_private(self.path, json.dumps(data, separators=(",", ":")).encode())


def _record_json(record: ProcRecord) -> dict[str, Any]:
    item: dict[str, Any] = {
        "task": record.task,
        "pid": record.pid,
        "pgid": record.pgid,
        "start": record.start,
    }
    if record.cgroup is not None:
        item["cgroup"] = record.cgroup
    return item


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
            cgroup = item.get("cgroup")
            found.append(
                ProcRecord(
                    task=str(item["task"]),
                    pid=int(item["pid"]),
                    pgid=int(item["pgid"]),
                    start=None if start is None else int(start),
                    cgroup=cgroup if isinstance(cgroup, str) else None,
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
    """End every process left by an engine that is no longer running.

    That is: the cgroup subtree its record file names, every ``devster-*`` subtree of a
    dead engine in devster's own cgroup, and (without cgroups) each recorded process
    group.  Each process found gets SIGTERM, then SIGKILL after ``grace`` seconds if it is
    still there; the subtrees are removed.  Records of a live engine are left alone;
    records from an earlier boot are discarded.  This blocks for up to ``grace`` + 1 s:
    call it before the event loop runs or through ``asyncio.to_thread``.

    Args:
        state_dir: The project's state directory.
        grace: Seconds between SIGTERM and SIGKILL.

    Returns:
        One :class:`OrphanInfo` per group or run cgroup that had live processes (for
        ``orphan.killed`` and, for the SIGKILLed ones, ``task.killed``).
    """
    folder = procs_dir(state_dir)
    trees: dict[str, dict[str, ProcRecord]] = {}
    group_records: list[ProcRecord] = []
    done_files: list[Path] = []
    boot = boot_id()
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        raw = _load(path)
        if raw is None or raw.get("boot_id") != boot:
            done_files.append(path)
            continue
        if _owner_alive(raw):
            continue
        done_files.append(path)
        tree = raw.get("cgroup")
        if not isinstance(tree, str) or engine_owner(os.path.basename(tree)) is None:
            tree = None  # only ever an engine's own subtree, whatever the file says
        runs = None if tree is None else trees.setdefault(tree, {})
        for record in _records_of(raw):
            if runs is not None and record.cgroup is not None:
                runs[os.path.basename(record.cgroup)] = record
            else:
                group_records.append(record)
    own = own_cgroup()
    for leftover in dead_engine_trees(own[0]) if own is not None else []:
        trees.setdefault(str(leftover), {})
    found = [info for tree, runs in trees.items() for info in _tree_orphans(tree, runs)]
    groups: list[OrphanInfo] = []
    for record in group_records:
        pids = orphan_members(record)
        if pids:
            groups.append(
                OrphanInfo(task=record.task, pid=record.pid, pgid=record.pgid, pids=tuple(pids))
            )
    killed = _end_orphans(list(trees), [info.pgid for info in groups], found, grace)
    for path in done_files:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    return [
        dataclasses.replace(info, killed=tuple(pid for pid in info.pids if pid in killed))
        for info in (*found, *groups)
    ]


def _tree_orphans(tree: str, runs: dict[str, ProcRecord]) -> list[OrphanInfo]:
    """The live processes of each run cgroup in a dead engine's subtree ``tree``."""
    found = []
    try:
        names = sorted(os.listdir(tree))
    except OSError:
        return []
    for name in names:
        run = os.path.join(tree, name)
        if not os.path.isdir(run):
            continue
        pids = cgroup_pids(run)
        if not pids:
            continue
        record = runs.get(name)
        if record is not None:
            found.append(
                OrphanInfo(task=record.task, pid=record.pid, pgid=record.pgid, pids=tuple(pids))
            )
            continue
        stat = read_stat(pids[0])
        task = name.partition("-")[2] or name
        pgid = stat.pgid if stat is not None else pids[0]
        found.append(OrphanInfo(task=task, pid=pids[0], pgid=pgid, pids=tuple(pids)))
    return found


def _end_orphans(
    trees: list[str], pgids: list[int], found: list[OrphanInfo], grace: float
) -> set[int]:
    """SIGTERM everything, SIGKILL what is left after ``grace``; returns the SIGKILLed."""
    for info in found:
        for pid in info.pids:
            _kill(pid, signal.SIGTERM)
    for pgid in pgids:
        _killpg(pgid, signal.SIGTERM)

    def remaining() -> set[int]:
        left = {pid for tree in trees for pid in cgroup_pids(tree)}
        for pgid in pgids:
            left.update(m.pid for m in group_members(pgid))
        return left

    deadline = time.monotonic() + grace
    live = [tree for tree in trees if cgroup_populated(tree)]
    while (live or any(group_exists(p) for p in pgids)) and time.monotonic() < deadline:
        time.sleep(0.01)
        live = [tree for tree in live if cgroup_populated(tree)]
    killed = remaining()
    for tree in trees:
        end_cgroup(tree)
    _end_groups(pgids, 0.0)
    return killed


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


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        return


def _killpg(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return
