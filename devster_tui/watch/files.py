"""File observers on watchfiles: one callback per burst of changes, whatever the save style.

Why not ``watchfiles.awatch`` as is: devster needs paths that do not exist yet, roots that
are deleted and recreated, attribute-only changes ignored, a quiet-time debounce measured
from the last change (so the write-to-restart latency stays near the debounce), watches set
up off the event loop, and a clear error when inotify runs out.  So each observer runs the
watchfiles Rust watcher (:class:`watchfiles._rust_notify.RustNotify`) in its own thread,
posts raw batches to the loop, and decides here what counts and when a burst ends:

- an existing directory is watched recursively; an existing file through its parent
  directory (so saves by rename keep working); a missing path through its nearest existing
  ancestor, non-recursively, until it appears; any of these changing re-plans the watches;
- a watched directory replaced in one step (``rm -rf src && mkdir src``, ``mv src src.old &&
  mkdir src``, a branch switch) re-plans them too: inotify's watch stays with the old
  directory, so the new one is watched afresh, and the files that changed meanwhile are
  found by comparing (size, mtime, inode) before and after;
- a "modified" change whose file keeps its size, mtime and inode (chmod, ``touch -a``) is
  an attribute change and does not count;
- a burst ends after ``debounce`` without counted changes, and then fires once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeAlias

from devster_tui.config.schema import FilesObserver
from devster_tui.watch.filters import PathFilter, relative

if TYPE_CHECKING:
    from watchfiles._rust_notify import RustNotify

log = logging.getLogger(__name__)

STAT_CACHE_LIMIT: Final = 200_000
"""Files whose (size, mtime, inode) are remembered to tell attribute-only changes apart."""

BIG_BURST_EXTRA: Final = 1.0
"""Most extra quiet time (0.2 ms per change so far) a big burst waits for: a checkout that
stalls under load (2 busy cores) must not split into two runs; single saves keep the debounce."""

BATCH_MS: Final = 100
"""Longest the Rust watcher groups changes before handing them to the loop."""

GIT_WAIT_MAX: Final = 30.0
"""Longest a burst is held open while a git index lock (``.git/index.lock``) exists."""

MAX_BURST_PATHS: Final = 20
"""Changed paths kept per burst for display (the count is always exact)."""

DRIFT_CHECK_EVERY: Final = 1.0
"""How often (seconds) a watch thread checks that the watched directories are still the
ones watched: a directory moved away with its parent (``mv src src.old`` while watching
``src/app``) reports nothing at all.  A few ``stat`` calls a second."""

ADDED, MODIFIED, DELETED = 1, 2, 3
"""watchfiles change codes."""


class WatchLimitError(OSError):
    """The system ran out of inotify watches; the message says how to raise the limit."""


def watch_limit_message(paths: list[str], detail: str) -> str:
    """The user-facing text for running out of inotify watches."""
    where = ", ".join(paths[:3]) + (" ..." if len(paths) > 3 else "")
    return (
        f"out of inotify watches while watching {where} ({detail}). "
        "Raise the limit (fs.inotify.max_user_watches), e.g. "
        "`sudo sysctl fs.inotify.max_user_watches=524288` "
        "(persist it in /etc/sysctl.d/), ignore big directories, "
        "or set `poll_fallback: true` (or `poll: true`) on the observer to poll instead"
    )


@dataclass(frozen=True, slots=True)
class Burst:
    """One debounced group of counted changes."""

    count: int
    """How many counted changes (path, kind) the burst held."""
    paths: tuple[str, ...]
    """Up to :data:`MAX_BURST_PATHS` changed paths, relative to the project directory."""

    def summary(self) -> str:
        """``src/a.py`` or ``src/a.py and 4 more``."""
        if not self.paths:
            return f"{self.count} changes"
        first = self.paths[0]
        return first if self.count <= 1 else f"{first} and {self.count - 1} more"


@dataclass
class _Plan:
    recursive: list[str] = field(default_factory=list)
    """Existing directories watched with everything below them."""
    flat: list[str] = field(default_factory=list)
    """Directories watched without their subdirectories (parents of files, ancestors)."""
    files: set[str] = field(default_factory=set)
    """Configured paths that are existing files (matched exactly)."""
    missing: set[str] = field(default_factory=set)
    """Configured paths that do not exist yet."""
    exists: dict[str, bool] = field(default_factory=dict)
    """Configured path -> whether it was a directory (True), a file (False) when planned."""
    dirs: dict[str, tuple[int, int] | None] = field(default_factory=dict)
    """Every watched directory -> its (st_dev, st_ino) when planned, before it was watched."""


_Item: TypeAlias = set[tuple[int, str]] | BaseException
"""What a watch thread posts to the loop: a batch of (change code, path), or its error."""


@dataclass
class _Collecting:
    """The burst being collected; it carries over when the watches are re-planned."""

    paths: dict[str, None] = field(default_factory=dict)
    """Up to :data:`MAX_BURST_PATHS` changed paths, in the order seen."""
    count: int = 0
    """Counted changes so far."""
    replanned: bool = False
    """The watches were re-planned during the burst: a change even when nothing is named."""
    deadline: float | None = None
    """Loop time at which the burst ends unless more changes come."""
    start: float = 0.0
    """Loop time of the burst's first change."""
    held_by_git: bool = False
    """Whether git's index lock held the burst open at the last deadline."""

    @property
    def pending(self) -> bool:
        """Whether the burst holds anything to fire."""
        return bool(self.count) or self.replanned

    def add(self, rels: list[str]) -> None:
        """Count changed paths (project-relative)."""
        for rel in rels:
            self.count += 1
            if len(self.paths) < MAX_BURST_PATHS:
                self.paths[rel] = None

    def take(self) -> Burst | None:
        """The finished burst (None if nothing counted); collecting starts afresh."""
        self.deadline = None
        if not self.pending:
            return None
        burst = Burst(self.count or 1, tuple(self.paths))
        self.paths, self.count, self.replanned = {}, 0, False
        return burst


def _real(path: str) -> str:
    return os.path.realpath(path)


def _dir_identity(path: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of a directory; None when it is missing or not a directory."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


def _drift(plan: _Plan) -> set[tuple[int, str]]:
    """What changed in the watched paths themselves since ``plan`` was made, as changes.

    A watched directory that is no longer the one watched (moved away, replaced) is
    reported deleted, a missing path that exists added, a configured path that vanished or
    changed type deleted: :meth:`FileWatcher._judge` re-plans for each.  One ``stat`` per
    path; safe to call from a watch thread (``plan`` is not changed once made).  ``rm -rf d
    && mkdir d`` may reuse the inode number, so that case relies on inotify's own event.
    """
    drift: set[tuple[int, str]] = set()
    for path, identity in plan.dirs.items():
        if _dir_identity(path) != identity:
            drift.add((DELETED, path))
    for path in plan.missing:
        if os.path.exists(path):
            drift.add((ADDED, path))
    for path, was_dir in plan.exists.items():
        if not os.path.exists(path) or os.path.isdir(path) != was_dir:
            drift.add((DELETED, path))
    return drift


def _is_limit(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and ("watch limit" in str(exc) or exc.errno == 28)


class FileWatcher:
    """Watches the paths of one ``files`` observer and calls ``on_fire`` once per burst."""

    def __init__(
        self,
        spec: FilesObserver,
        root: Path,
        on_fire: Callable[[Burst], None],
        *,
        on_warning: Callable[[str], None] = lambda _m: None,
        step_ms: int | None = None,
    ) -> None:
        """Prepare a watcher; nothing is watched until :meth:`run`.

        Args:
            spec: The observer's configuration.
            root: The project directory (relative paths start here).
            on_fire: Called on the event loop with each finished burst.
            on_warning: Called with a message when watching degrades (polling fallback).
            step_ms: How often the Rust watcher looks for new changes (default: a quarter of
                the debounce, between 5 and 50 ms).
        """
        self.spec = spec
        """The observer configuration."""
        self.root = _real(str(root))
        self._paths = [_real(os.path.join(self.root, p)) for p in spec.paths]
        self._filter = PathFilter.of(spec.include, spec.ignore, spec.default_ignores)
        self._on_fire = on_fire
        self._on_warning = on_warning
        debounce_ms = max(0, round(spec.debounce * 1000))
        self._debounce = spec.debounce
        self._step_ms = step_ms if step_ms is not None else max(5, min(50, debounce_ms // 4))
        self._poll = spec.poll
        self._git_locks = _git_index_locks([self.root, *self._paths])
        self._stats: dict[str, tuple[int, int, int]] = {}
        self._links: dict[str, str] = {}
        self.ready = asyncio.Event()
        """Set once the watches are in place (cleared while they are re-planned)."""
        self.fired = 0
        """Bursts fired so far."""
        self.replans = 0
        """How often the watches were re-planned (paths appeared or disappeared)."""

    # ------------------------------------------------------------------ planning

    def _make_plan(self) -> _Plan:
        plan = _Plan()
        flat: set[str] = set()
        for path in self._paths:
            if os.path.isdir(path):
                plan.recursive.append(path)
                plan.exists[path] = True
            elif os.path.exists(path):
                plan.files.add(path)
                flat.add(os.path.dirname(path))
                plan.exists[path] = False
            else:
                plan.missing.add(path)
                ancestor = os.path.dirname(path)
                while ancestor != os.path.dirname(ancestor) and not os.path.isdir(ancestor):
                    ancestor = os.path.dirname(ancestor)
                flat.add(ancestor)
        # A directory already watched recursively needs no flat watch.
        plan.flat = sorted(d for d in flat if relative(d, plan.recursive) is None)
        # Taken before the watches are set up: a directory replaced in between shows up
        # as drift once they are (see _drift), never as a watch on the wrong directory.
        plan.dirs = {d: _dir_identity(d) for d in (*plan.recursive, *plan.flat)}
        return plan

    def _fill_stats(self, plan: _Plan) -> None:
        """Remember (size, mtime, inode) of the watched files (runs in a thread)."""
        stats: dict[str, tuple[int, int, int]] = {}
        links: dict[str, str] = {}
        self._links = links
        for file in plan.files:
            self._stat_into(stats, file)
        for top in plan.recursive:
            for dirpath, dirnames, filenames in os.walk(top):
                rel_dir = relative(dirpath, [top]) or "."
                for d in dirnames:
                    link = os.path.join(dirpath, d)
                    if os.path.islink(link):
                        links[link] = _real(link)
                dirnames[:] = [
                    d
                    for d in dirnames
                    if not self._filter.ignored_dir(d if rel_dir == "." else f"{rel_dir}/{d}")
                ]
                for name in filenames:
                    if len(stats) >= STAT_CACHE_LIMIT:
                        self._stats = stats
                        return
                    self._stat_into(stats, os.path.join(dirpath, name))
        self._stats = stats

    @staticmethod
    def _stat_into(stats: dict[str, tuple[int, int, int]], path: str) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            stats.pop(path, None)
            return False
        stats[path] = (st.st_size, st.st_mtime_ns, st.st_ino)
        return True

    # ------------------------------------------------------------------ run

    async def run(self) -> None:
        """Watch until cancelled.

        Raises:
            WatchLimitError: inotify watches ran out and ``poll_fallback`` is off.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[_Item] = asyncio.Queue()
        burst = _Collecting()
        first = True
        while True:
            plan = self._make_plan()
            before = self._stats
            try:
                threads = await self._open(plan, queue, loop)
            except _Replan:
                await asyncio.sleep(0.01)
                continue
            try:
                # After a re-plan the watches were down for a moment (and a replaced
                # directory was not watched at all): what changed meanwhile counts, by name.
                missed = await asyncio.to_thread(self._rescan, plan, None if first else before)
                first = False
                if missed:
                    burst.add(missed)
                    burst.deadline = loop.time() + self._quiet(burst.count)
                drift = _drift(plan)
                if drift:  # replaced again while the watches were being set up
                    queue.put_nowait(drift)
                self.ready.set()
                await self._collect(plan, queue, loop, burst)
            finally:
                self.ready.clear()
                await _close(threads)

    async def _collect(
        self,
        plan: _Plan,
        queue: asyncio.Queue[_Item],
        loop: asyncio.AbstractEventLoop,
        burst: _Collecting,
    ) -> None:
        """Judge batches and fire bursts until the watches must be re-planned."""
        while True:
            deadline = burst.deadline
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                # Batches already queued come first: when processing lags behind (a loaded
                # machine), a passed deadline must not end a burst whose next changes are
                # waiting in the queue.
                if not queue.empty():
                    item = queue.get_nowait()
                else:
                    item = await asyncio.wait_for(queue.get(), timeout)
            except TimeoutError:
                self._on_quiet(burst, loop)
                continue
            if isinstance(item, BaseException):
                if not _is_limit(item):
                    raise item
                self._limit_reached(plan.recursive + plan.flat, item)
                return
            counted, replan = self._judge(item, plan)
            if (counted or replan) and not burst.pending:
                burst.start = loop.time()
            burst.add(counted)
            if counted or replan:
                # A big burst (a checkout) waits a little longer for quiet, so a pause
                # under load does not split it; single saves keep the debounce.
                quiet = self._quiet(burst.count) - self._step_ms / 1000
                burst.deadline = loop.time() + max(0.0, quiet)
            if replan:
                burst.replanned = True
                self.replans += 1
                return

    def _on_quiet(self, burst: _Collecting, loop: asyncio.AbstractEventLoop) -> None:
        """The quiet deadline passed: hold the burst while git writes, else fire it."""
        if burst.pending and loop.time() - burst.start < GIT_WAIT_MAX and self._git_busy():
            # git is still writing the work tree (checkout, rebase, reset): its pauses
            # under load can outlast any quiet window, but the index lock says the burst
            # is not over.
            burst.held_by_git = True
            burst.deadline = loop.time() + self._debounce
            return
        if burst.held_by_git:
            # git just let go; its last changes may still be on their way from the watcher
            # thread: one more full quiet window.
            burst.held_by_git = False
            burst.deadline = loop.time() + self._quiet(burst.count)
            return
        done = burst.take()
        if done is not None:
            self.fired += 1
            self._on_fire(done)

    def _rescan(self, plan: _Plan, before: dict[str, tuple[int, int, int]] | None) -> list[str]:
        """Take the stats of ``plan`` (runs in a thread); the changes since ``before``."""
        self._fill_stats(plan)
        return [] if before is None else self._missed(before, plan)

    def _missed(self, before: dict[str, tuple[int, int, int]], plan: _Plan) -> list[str]:
        """Counted changes (project-relative) between the stats ``before`` and now.

        Files new or different since ``before``, and files in ``before`` that are gone.
        ``before`` may also hold directories and paths through symlinks, which the walk
        does not repeat: only those that no longer exist count as gone.
        """
        after = self._stats
        if max(len(before), len(after)) >= STAT_CACHE_LIMIT:
            return []  # partial stats: the re-plan itself still counts as a change
        changed = [path for path, st in after.items() if before.get(path) != st]
        changed += [p for p in before if p not in after and not os.path.lexists(p)]
        missed: list[str] = []
        for path in changed:
            rel = self._counted(path, plan)
            if rel is not None:
                missed.append(rel)
        return missed

    def _quiet(self, count: int) -> float:
        """Quiet time that ends a burst of ``count`` changes so far."""
        return self._debounce + min(BIG_BURST_EXTRA, count * 2e-4)

    def _git_busy(self) -> bool:
        """Whether git holds an index lock (one stat per lock file: microseconds)."""
        return any(os.path.exists(lock) for lock in self._git_locks)

    async def _open(
        self,
        plan: _Plan,
        queue: asyncio.Queue[_Item],
        loop: asyncio.AbstractEventLoop,
    ) -> list[_WatchThread]:
        threads: list[_WatchThread] = []
        groups = [(plan.recursive, True), (plan.flat, False)]
        try:
            for paths, recursive in groups:
                if not paths:
                    continue
                # One thread (the first) also looks for drift (see _drift) now and then.
                check = None if threads else functools.partial(_drift, plan)
                thread = await self._start_thread(paths, recursive, queue, loop, check)
                threads.append(thread)
        except BaseException:
            await _close(threads)
            raise
        return threads

    async def _start_thread(
        self,
        paths: list[str],
        recursive: bool,
        queue: asyncio.Queue[_Item],
        loop: asyncio.AbstractEventLoop,
        check: Callable[[], set[tuple[int, str]]] | None,
    ) -> _WatchThread:
        while True:
            thread = _WatchThread(paths, recursive, self._poll, self._step_ms, queue, loop)
            thread.check = check
            try:
                await asyncio.to_thread(thread.open)
            except FileNotFoundError:
                # A path vanished between planning and watching: plan again shortly.
                thread.close()
                raise _Replan() from None
            except OSError as exc:
                thread.close()
                if not _is_limit(exc):
                    raise
                self._limit_reached(paths, exc)
                continue
            thread.start()
            return thread

    def _limit_reached(self, paths: list[str], exc: BaseException) -> None:
        """Fall back to polling when allowed, else raise :class:`WatchLimitError`."""
        message = watch_limit_message(paths, str(exc).split(" about ")[0])
        if not self.spec.poll_fallback or self._poll:
            raise WatchLimitError(message) from None
        self._poll = True
        self._on_warning(message + "; polling instead")

    def _judge(self, changes: set[tuple[int, str]], plan: _Plan) -> tuple[list[str], bool]:
        """The counted changes (project-relative paths) and whether to re-plan the watches."""
        counted: list[str] = []
        replan = False
        for kind, raw in changes:
            path = self._unalias(raw, plan)
            if path in plan.dirs and (kind != MODIFIED or _dir_identity(path) != plan.dirs[path]):
                # A watched directory itself was deleted or moved away: its watch went
                # with it, even when a new directory already stands at the same path
                # (``rm -rf src && mkdir src``, a branch switch), so watch again.  Only
                # its attributes changing (chmod) reports it as modified.
                replan = True
            if path in plan.exists or path in plan.missing:
                # A configured path appeared, vanished or was replaced.
                is_dir = os.path.isdir(path)
                was = plan.exists.get(path)
                if (path in plan.missing and os.path.exists(path)) or (
                    was is not None and (not os.path.exists(path) or was != is_dir)
                ):
                    replan = True
                if plan.exists.get(path):
                    continue  # the root directory itself: its contents tell the story
            elif any(m.startswith(path + "/") for m in plan.missing) and os.path.isdir(path):
                replan = True  # an ancestor of a missing path appeared
                continue
            rel = self._counted(path, plan)
            if rel is None:
                continue
            if kind == MODIFIED and not self._content_changed(path):
                continue
            if kind == ADDED:
                self._stat_into(self._stats, path)
            elif kind == DELETED:
                self._stats.pop(path, None)
            counted.append(rel)
        return counted, replan

    def _counted(self, path: str, plan: _Plan) -> str | None:
        """The project-relative name of ``path`` if a change of it counts, else None."""
        rel = relative(path, plan.recursive)
        if rel is None:
            if path in plan.files or path in plan.missing:
                rel = os.path.basename(path)
            else:
                # Under a configured directory that is gone (its files, found gone by
                # _missed), else a sibling in a parent watched only for a file.
                rel = relative(path, sorted(plan.missing))
                if rel is None:
                    return None
        if not self._counts(path, rel):
            return None
        return relative(path, [self.root]) or path

    def _unalias(self, raw: str, plan: _Plan) -> str:
        """The path without symlinked directories that point back into the watched tree.

        The Rust watcher follows symlinks, so with a loop (``src/loop -> ..``) it reports
        ``src/loop/src/a.py`` for ``src/a.py``; textual replacement also works for paths
        that no longer exist.
        """
        links = self._links
        if not links:
            return raw
        path = raw
        for _ in range(40):
            for link, target in links.items():
                if path == link or path.startswith(link + "/"):
                    path = target + path[len(link) :]
                    break
            else:
                break
        if path == raw:
            return raw
        if relative(path, plan.recursive) is not None or path in plan.exists:
            return path
        return raw  # a link out of the watched tree: keep the in-tree name

    def _counts(self, path: str, rel: str) -> bool:
        project_rel = relative(path, [self.root])
        if project_rel is not None and project_rel != rel:
            return self._filter.counts(rel, project_rel)
        return self._filter.counts(rel)

    def _content_changed(self, path: str) -> bool:
        """False for a change of attributes only (chmod, ``touch -a``)."""
        before = self._stats.get(path)
        if not self._stat_into(self._stats, path):
            return True
        if os.path.isdir(path):
            return False  # a directory's own metadata; its entries report themselves
        return before is None or self._stats[path] != before


class _Replan(Exception):
    """Planning raced with the file system; plan again."""


class _WatchThread:
    """One RustNotify instance and the thread that waits on it and posts batches."""

    def __init__(
        self,
        paths: list[str],
        recursive: bool,
        poll: bool,
        step_ms: int,
        queue: asyncio.Queue[_Item],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.paths = paths
        self.recursive = recursive
        self.poll = poll
        self.step_ms = step_ms
        self.queue = queue
        self.loop = loop
        self.stop = threading.Event()
        self.notify: RustNotify | None = None
        self.thread: threading.Thread | None = None
        self.check: Callable[[], set[tuple[int, str]]] | None = None
        """Called about every :data:`DRIFT_CHECK_EVERY` s; what it returns is posted."""

    def open(self) -> None:
        # watchfiles' private Rust notifier: its public watch() gives no way to hand
        # changes over while a burst lasts or to re-arm one path set. pyproject.toml
        # bounds watchfiles (<1.4) for that reason.
        from watchfiles._rust_notify import RustNotify

        self.notify = RustNotify(self.paths, False, self.poll, 100, self.recursive, False)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="devster-watch", daemon=True)
        self.thread.start()

    def _post(self, item: _Item) -> None:
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def _loop(self) -> None:
        notify = self.notify
        assert notify is not None
        timeout_ms = round(DRIFT_CHECK_EVERY * 1000)
        check_at = time.monotonic() + DRIFT_CHECK_EVERY
        while not self.stop.is_set():
            try:
                # Hand over what was seen at least every BATCH_MS, also while changes keep
                # coming: the quiet-time logic lives on the loop, and changes held in the
                # Rust watcher during a long burst would look like quiet.
                raw = notify.watch(BATCH_MS, self.step_ms, timeout_ms, self.stop)
                if self.check is not None and time.monotonic() >= check_at:
                    check_at = time.monotonic() + DRIFT_CHECK_EVERY
                    drift = self.check()
                    if drift:
                        self._post(drift)
            except BaseException as exc:  # reported on the loop, never lost in a thread
                self._post(exc)
                return
            if isinstance(raw, set):
                if raw:
                    self._post(raw)
            elif raw == "stop":
                return

    def close(self) -> None:
        self.stop.set()
        notify = self.notify
        if notify is not None and (self.thread is None or not self.thread.is_alive()):
            with contextlib.suppress(Exception):
                notify.close()


async def _close(threads: list[_WatchThread]) -> None:
    for thread in threads:
        thread.stop.set()
    for thread in threads:
        if thread.thread is not None:
            await asyncio.to_thread(thread.thread.join, 5.0)
        thread.close()


def _git_index_locks(paths: list[str]) -> list[str]:
    """The ``index.lock`` files of the git work trees containing ``paths`` (usually one)."""
    locks: dict[str, None] = {}
    for path in paths:
        probe = path
        while True:
            git = os.path.join(probe, ".git")
            if os.path.isdir(git):
                locks[os.path.join(git, "index.lock")] = None
                break
            parent = os.path.dirname(probe)
            if parent == probe:
                break
            probe = parent
    return list(locks)
