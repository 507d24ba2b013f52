"""Per-task cgroup v2 groups: where they go, how a task lands in one, how one is ended.

Why: a process group is not a container.  A task that calls ``setsid`` or double-forks
leaves its group, and ``killpg`` (and the guard) no longer reach it.  A cgroup v2 group
cannot be left by an unprivileged process, so where the machine offers a writable cgroup2
hierarchy the local executor gives each engine a subtree (``OWN/devster-PID-START-N``,
beside devster's own cgroup's processes) and each task run one cgroup in it
(``rNUMBER-TASK``).  A run ends when its cgroup is empty; ``cgroup.kill`` ends all of it at
once, forks in flight included.

Placement: glibc's ``posix_spawn`` has no cgroup attribute (glibc 2.36), and
``clone3(CLONE_INTO_CGROUP)`` cannot be called from Python, so the engine moves *itself*
into the run's cgroup for the duration of the spawn and back right after: the child is
born inside, covered from its first instruction on (there is no window in which it exists
outside).  Measured here: ~0.14 ms for the two moves (the first one of a burst up to
~15 ms, an RCU grace period), ~0.2 ms to create a cgroup.  Nothing else in the engine
forks while the event loop spawns (the engine's own helper processes run before any task
starts), so no other child can be born in a task's cgroup.

Where it finds the hierarchy: the ``cgroup2`` mount in ``/proc/self/mountinfo`` and the
``0::`` line of ``/proc/self/cgroup`` (a hybrid host mounts it at
``/sys/fs/cgroup/unified`` beside the v1 controllers; systemd delegates one subtree per
user).  When there is none, or it is not writable, or ``DEVSTER_CGROUPS=off`` is set, the
executor falls back to process groups plus a child subreaper (see ``local.py``).
"""

from __future__ import annotations

import atexit
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from devster_tui.executors.guard import (
    cgroup_pids,
    cgroup_populated,
    kill_cgroup,
    remove_cgroup,
    start_time,
)

ENV_SWITCH = "DEVSTER_CGROUPS"
"""Environment variable: ``off`` (or ``0``, ``no``) makes the local executor use process
groups and a subreaper only, as on a machine without cgroup v2."""

ENGINE_PREFIX = "devster-"
"""Name prefix of an engine's subtree in devster's own cgroup."""

_ENGINE_NAME = re.compile(r"^devster-(\d+)-(\d+)-(\d+)$")
_SAFE = re.compile(r"[^A-Za-z0-9_.@-]+")
_COUNTER = itertools.count(1)
_MADE: set[Path] = set()
"""Subtrees this process created and has not removed yet (removed, if empty, at exit)."""


@atexit.register
def _remove_made() -> None:
    for path in list(_MADE):
        remove_cgroup(str(path))


def disabled_by_env(environ: dict[str, str] | None = None) -> bool:
    """Whether :data:`ENV_SWITCH` asks for the fallback."""
    value = (environ if environ is not None else os.environ).get(ENV_SWITCH, "")
    return value.strip().lower() in ("off", "0", "no", "false")


def _unescape(field: str) -> str:
    """Undo the octal escapes of ``/proc/self/mountinfo`` (``\\040`` for a space)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def own_cgroup(
    mountinfo: str | None = None, proc_cgroup: str | None = None
) -> tuple[Path, Path] | None:
    """Devster's own cgroup v2 directory and the root of the hierarchy it is in.

    Args:
        mountinfo: Text of ``/proc/self/mountinfo`` (read when None).
        proc_cgroup: Text of ``/proc/self/cgroup`` (read when None).

    Returns:
        ``(own directory, mount point)``, or None without a cgroup2 mount that holds it.
    """
    try:
        if mountinfo is None:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        if proc_cgroup is None:
            proc_cgroup = Path("/proc/self/cgroup").read_text()
    except OSError:
        return None
    own = next((line[3:] for line in proc_cgroup.splitlines() if line.startswith("0::")), None)
    if own is None or not own.startswith("/") or ".." in own.split("/"):
        return None  # "0::/../x": outside our cgroup namespace
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5 or right.split()[:1] != ["cgroup2"]:
            continue
        root, point = _unescape(fields[3]), _unescape(fields[4])
        if own != root and not own.startswith(root.rstrip("/") + "/"):
            continue
        rel = own[len(root.rstrip("/")) :].lstrip("/")
        return Path(point) / rel, Path(point)
    return None


def engine_owner(name: str) -> tuple[int, int] | None:
    """``(pid, start time)`` of the engine that named its subtree ``name``, or None."""
    found = _ENGINE_NAME.match(name)
    return None if found is None else (int(found.group(1)), int(found.group(2)))


def dead_engine_trees(own: Path) -> list[Path]:
    """Subtrees in ``own`` left by engines that no longer run (pid and start time differ)."""
    try:
        names = os.listdir(own)
    except OSError:
        return []
    dead = []
    for name in sorted(names):
        owner = engine_owner(name)
        if owner is not None and start_time(owner[0]) != owner[1]:
            dead.append(own / name)
    return dead


@dataclass(frozen=True, slots=True)
class RunCgroup:
    """The cgroup of one task run."""

    path: Path
    """Its directory."""

    def pids(self) -> list[int]:
        """The processes in it (never zombies: they have left it already)."""
        return cgroup_pids(str(self.path))

    def populated(self) -> bool:
        """True while a process runs in it."""
        return cgroup_populated(str(self.path))

    def kill(self) -> None:
        """SIGKILL everything in it (``cgroup.kill``; else one round over its pids)."""
        kill_cgroup(str(self.path))

    def remove(self) -> bool:
        """Remove the (empty) cgroup; True when it is gone."""
        try:
            os.rmdir(self.path)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True


class CgroupTree:
    """One engine's cgroup subtree: create run cgroups and spawn into them."""

    def __init__(self, own: Path, path: Path) -> None:
        """Wrap an existing subtree (see :meth:`create`)."""
        self.own = own
        """Devster's own cgroup (where the engine process lives between spawns)."""
        self.path = path
        """The engine's subtree."""
        self._home_fd = os.open(own / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
        self._me = str(os.getpid()).encode()
        self._runs = itertools.count(1)

    @classmethod
    def create(cls) -> CgroupTree | None:
        """Create this engine's subtree, or None when cgroup v2 cannot be used here.

        "Cannot be used" covers: no cgroup2 mount holding devster's cgroup, a cgroup that is
        not writable, ``DEVSTER_CGROUPS=off``, and a failed trial move of the engine into
        the subtree and back (then nothing is left behind).
        """
        if disabled_by_env():
            return None
        found = own_cgroup()
        if found is None:
            return None
        own = found[0]
        pid = os.getpid()
        start = start_time(pid)
        if start is None:
            return None
        path = own / f"{ENGINE_PREFIX}{pid}-{start}-{next(_COUNTER)}"
        try:
            os.mkdir(path, 0o755)
        except OSError:
            return None
        try:
            tree = cls(own, path)
        except OSError:
            _rmdir(path)
            return None
        try:
            tree._enter(path)
            tree._leave()
        except OSError:
            tree._release()
            _rmdir(path)
            return None
        _MADE.add(path)
        return tree

    def new_run(self, task: str) -> RunCgroup:
        """Create the cgroup of a new run of ``task``.

        Raises:
            OSError: when the cgroup cannot be created.
        """
        name = _SAFE.sub("_", task)[:64] or "task"
        path = self.path / f"r{next(self._runs)}-{name}"
        os.mkdir(path, 0o755)
        return RunCgroup(path)

    def enter(self, run: RunCgroup) -> None:
        """Move the engine into ``run`` (its next child is born there); :meth:`leave` next.

        Raises:
            OSError: when the move is refused (the engine stays where it was).
        """
        self._enter(run.path)

    def leave(self) -> None:
        """Move the engine back to its own cgroup.

        Raises:
            OSError: when even the move home fails (the caller must end the run's cgroup
                with the engine out of it, so this is retried once first).
        """
        try:
            self._leave()
        except OSError:
            self._leave()

    def _enter(self, path: Path) -> None:
        fd = os.open(path / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, self._me)
        finally:
            os.close(fd)

    def _leave(self) -> None:
        os.write(self._home_fd, self._me)

    def remove(self) -> bool:
        """Remove the subtree if every run cgroup in it is gone; True when it was removed."""
        if _rmdir(self.path):
            _MADE.discard(self.path)
            return True
        return False

    def _release(self) -> None:
        if self._home_fd >= 0:
            os.close(self._home_fd)
            self._home_fd = -1

    def close(self) -> None:
        """Forget the subtree (what is left of it is the guard's to end and remove)."""
        self._release()


def _rmdir(path: Path) -> bool:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True
