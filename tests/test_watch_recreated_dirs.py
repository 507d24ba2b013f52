"""Watched directories deleted, moved away or swapped by git and recreated in one step.

Pins: ``rm -rf src && mkdir src`` or ``mv src src.old && mkdir src`` (what branch switches
and build tools do) left the observer blind for good: inotify's watch went with the old
directory, writes in the new ``src`` triggered nothing and writes in ``src.old`` still
triggered under the old name.  The first tests drive ``devster up --no-tui`` and read what
fired from ``devster events``; the others drive the observer itself over real files with
real ``sh -c`` commands, where each firing's paths can be checked exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from devster_tui.config.schema import FilesObserver
from devster_tui.watch.files import Burst, FileWatcher
from tests.test_api_support import runtime_env

DEADLINE = 15.0
"""Longest wait for any one expected thing (a line, a firing, the watches being ready)."""

PROJECT = """\
observers:
  src: {files: {paths: [src]}}
tasks:
  build: {cmd: "true", kind: job, triggers: [src]}
  keep: {cmd: "sleep 1000"}
"""
"""A job triggered by changes in ``src/``, and a service that keeps ``devster up`` running."""


def sh(cwd: Path, script: str) -> None:
    """Run ``script`` as one ``sh -c`` command (the steps run back to back, no pause)."""
    subprocess.run(["sh", "-c", script], cwd=cwd, check=True, timeout=DEADLINE)


# --------------------------------------------------------------------------- from the CLI


class Lines:
    """A subprocess whose stdout lines a reader thread collects (stderr goes to a file)."""

    def __init__(self, cwd: Path, args: list[str], stderr: Path) -> None:
        self._err = stderr.open("wb")
        self.proc = subprocess.Popen(
            args, cwd=cwd, stdout=subprocess.PIPE, stderr=self._err, stdin=subprocess.DEVNULL
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._queue.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self._queue.put(None)

    def wait_line(self, accept: Callable[[str], bool], since: int, limit: float = DEADLINE) -> int:
        """The index of the first line from ``since`` on that ``accept`` takes.

        Raises:
            AssertionError: after ``limit`` seconds, or when the output ends first.
        """
        deadline = time.monotonic() + limit
        index = since
        while True:
            while index < len(self.lines):
                if accept(self.lines[index]):
                    return index
                index += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = "\n".join(self.lines[since:][-12:])
                raise AssertionError(f"nothing expected within {limit} s; the last lines:\n{seen}")
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if item is None:
                raise AssertionError("output ended early:\n" + "\n".join(self.lines[-12:]))
            self.lines.append(item)

    def stop(self) -> None:
        """SIGINT, then SIGKILL if it is still there after the deadline."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=DEADLINE)
        self._err.close()


class Up:
    """``devster up --no-tui`` on a project, with ``devster events --follow --json`` beside it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.up = Lines(root, [sys.executable, "-m", "devster_tui", "up", "--no-tui"], root / "e1")
        self.events: Lines | None = None

    def start(self) -> None:
        """Wait for the job's first run, follow the events and for the observer to watch."""
        self.up.wait_line(lambda line: bool(re.match(r"build\s+\* succeeded", line)), 0)
        cmd = [sys.executable, "-m", "devster_tui", "events", "--follow", "--json"]
        self.events = Lines(self.root, cmd, self.root / "e2")
        self.events.wait_line(lambda line: '"engine.started"' in line, 0)
        self.write_until_fired(self.root / "src", "ready", 0)

    def write_until_fired(self, directory: Path, stem: str, since: int) -> str:
        """Write new files ``STEM-N.txt`` in ``directory`` until a firing after ``since``
        names one of them; that firing's detail.

        A firing names only the first of its paths (``changed: src/a.py and 3 more``): a
        write that joins a burst still open (the recreation's own, or one held by git) is
        counted there but not named, so the next file, written after that burst, is.  While
        the observer is blind to ``directory`` no file is ever named.

        Raises:
            AssertionError: after :data:`DEADLINE` seconds without such a firing.
        """
        deadline = time.monotonic() + DEADLINE
        n = 0
        while time.monotonic() < deadline:
            (directory / f"{stem}-{n}.txt").write_text(f"{n}\n")
            n += 1
            with contextlib.suppress(AssertionError):
                return self.fired(f"/{stem}-", since, limit=1.0)
        raise AssertionError(f"no firing named {stem}-N.txt: {self.details(since)}")

    def mark(self) -> int:
        """Where the events seen so far end."""
        assert self.events is not None
        return len(self.events.lines)

    def details(self, since: int) -> list[str]:
        """The details of the firings (``changed: src/a.py``) seen from ``since`` on."""
        assert self.events is not None
        return [d for line in self.events.lines[since:] if (d := _trigger_detail(line))]

    def fired(self, name: str, since: int, limit: float = DEADLINE) -> str:
        """Wait for a firing after ``since`` whose detail mentions ``name``; its detail."""
        assert self.events is not None
        index = self.events.wait_line(
            lambda line: name in (_trigger_detail(line) or ""), since, limit
        )
        detail = _trigger_detail(self.events.lines[index])
        assert detail is not None
        return detail

    def stop(self) -> None:
        """Stop the event follower and devster."""
        if self.events is not None:
            self.events.stop()
        self.up.stop()


def _trigger_detail(line: str) -> str | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if event.get("type") != "task.triggered" or event.get("task") != "build":
        return None
    return str(event["data"]["detail"])


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    """A project whose ``build`` job is triggered by ``src/``, running under ``devster up``."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("x = 1\n")
    (tmp_path / "devster.yaml").write_text(PROJECT)
    with runtime_env():
        running = Up(tmp_path)
        try:
            running.start()
            yield running
        finally:
            running.stop()


def test_dir_recreated_in_one_step_keeps_triggering(up: Up) -> None:
    before = up.mark()
    sh(up.root, "rm -rf src && mkdir src")
    assert up.write_until_fired(up.root / "src", "new", before).startswith("changed: src/new-")


def test_dir_moved_away_and_recreated_triggers_for_the_new_dir_not_the_old(up: Up) -> None:
    before = up.mark()
    sh(up.root, "mv src src.old && mkdir src")
    up.write_until_fired(up.root / "src", "new", before)
    after = up.mark()
    (up.root / "src.old" / "old.txt").write_text("old\n")
    up.write_until_fired(up.root / "src", "newer", after)
    assert not [d for d in up.details(before) if "old" in d.split("/")[-1]]


def test_git_checkout_swapping_src_back_and_forth_keeps_triggering(up: Up) -> None:
    """The branches' ``src/`` share no file: each ``git checkout`` removes ``src/`` and
    creates it again in one go, like ``rm -rf src && mkdir src`` (ext4 even hands the new
    directory the old one's inode number; the mode set here tells them apart)."""
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    root = up.root
    (root / ".gitignore").write_text("e1\ne2\n.devster/\n")

    def run_git(*args: str) -> None:
        subprocess.run([*git, *args], cwd=root, check=True, timeout=DEADLINE)

    run_git("init", "-q", "-b", "one")
    run_git("add", "-A")
    run_git("commit", "-qm", "one")
    run_git("checkout", "-qb", "two")
    run_git("rm", "-rq", "src")
    (root / "src").mkdir()
    (root / "src" / "b.py").write_text("y = 2\n")
    run_git("add", "-A")
    run_git("commit", "-qm", "two")
    for branch in ("one", "two", "one"):
        os.chmod(root / "src", 0o700)
        before = up.mark()
        sh(root, f"git checkout -q {branch}")
        assert os.stat(root / "src").st_mode & 0o777 == 0o755, "git kept src/: nothing tested"
        up.write_until_fired(root / "src", f"edit-{branch}", before)
        run_git("clean", "-fq", "src")  # untracked files would keep src/ in place


# --------------------------------------------------------------------------- the observer


class Recorder:
    """A running watcher and the bursts it fired."""

    def __init__(self, root: Path, spec: dict[str, object]) -> None:
        self.root = root
        self.bursts: list[Burst] = []
        self._changed = asyncio.Event()
        self.watcher = FileWatcher(FilesObserver.model_validate(spec), root, self._on_fire)

    def _on_fire(self, burst: Burst) -> None:
        self.bursts.append(burst)
        self._changed.set()

    async def ready(self) -> None:
        """Wait until the watches are in place."""
        await asyncio.wait_for(self.watcher.ready.wait(), DEADLINE)

    async def burst(self, since: int) -> int:
        """Wait for a burst after number ``since``; how many bursts there are then."""
        async with asyncio.timeout(DEADLINE):
            while len(self.bursts) <= since:
                self._changed.clear()
                await self._changed.wait()
        return len(self.bursts)

    async def named(self, rel: str, since: int) -> int:
        """Wait for a burst after number ``since`` naming ``rel``; how many bursts there are then.

        Raises:
            TimeoutError: after :data:`DEADLINE` without such a burst.
        """
        async with asyncio.timeout(DEADLINE):
            while not any(rel in b.paths for b in self.bursts[since:]):
                self._changed.clear()
                await self._changed.wait()
        return len(self.bursts)

    def paths(self, since: int = 0) -> list[str]:
        """Every path named by the bursts after number ``since``."""
        return [p for b in self.bursts[since:] for p in b.paths]

    async def sh(self, script: str) -> None:
        """:func:`sh` in the watched project, off the event loop."""
        await asyncio.to_thread(sh, self.root, script)

    async def write(self, rel: str, text: str = "1\n") -> None:
        """Write a file (relative to the project)."""
        await asyncio.to_thread((self.root / rel).write_text, text)


def watching(root: Path, body: Callable[[Recorder], Awaitable[None]], **spec: object) -> None:
    """Run ``body`` with a ready watcher over ``root`` (``paths`` defaults to ``[src]``)."""

    async def main() -> None:
        rec = Recorder(root, {"paths": ["src"], **spec})
        task = asyncio.create_task(rec.watcher.run())
        try:
            await rec.ready()
            await body(rec)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(asyncio.wait_for(main(), 120))


def tree(root: Path, *files: str) -> None:
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x = 1\n")


def test_files_made_in_a_dir_recreated_in_one_step_are_named(tmp_path: Path) -> None:
    """Files written before the new directory is watched still count, under their names."""
    tree(tmp_path, "src/a.py")

    async def body(rec: Recorder) -> None:
        await rec.sh("rm -rf src && mkdir src && echo 1 > src/early.py")
        seen = await rec.named("src/early.py", 0)
        await rec.ready()
        await rec.write("src/late.py")
        await rec.named("src/late.py", seen)

    watching(tmp_path, body)


def test_dir_moved_away_and_recreated_no_longer_fires_for_the_old_dir(tmp_path: Path) -> None:
    tree(tmp_path, "src/a.py", "src/pkg/m.py")

    async def body(rec: Recorder) -> None:
        await rec.sh("mv src src.old && mkdir src")
        seen = await rec.named("src/a.py", 0)  # gone from src/: a change
        await rec.ready()
        await rec.write("src.old/old.py")
        await rec.write("src.old/pkg/old.py")
        await rec.write("src/new.py")
        seen = await rec.named("src/new.py", seen)
        await rec.write("src/newer.py")
        await rec.named("src/newer.py", seen)
        assert not [p for p in rec.paths() if "old.py" in p]

    watching(tmp_path, body)


def test_files_of_a_dir_moved_away_are_named_as_gone(tmp_path: Path) -> None:
    """Moving a directory away reports only the directory itself; its files count as gone
    (under load the move is often seen before the ``mkdir`` that follows it)."""
    tree(tmp_path, "src/a.py", "src/pkg/m.py")

    async def body(rec: Recorder) -> None:
        await rec.sh("mv src src.old")
        seen = await rec.named("src/a.py", 0)
        assert "src/pkg/m.py" in rec.paths()
        await rec.ready()
        await rec.sh("mkdir src && echo 1 > src/new.py")
        await rec.named("src/new.py", seen)

    watching(tmp_path, body)


def test_dir_recreated_five_times_in_a_row_keeps_triggering(tmp_path: Path) -> None:
    tree(tmp_path, "src/a.py")

    async def body(rec: Recorder) -> None:
        await rec.sh(
            "for i in 1 2 3 4 5; do mv src src.old.$i && mkdir src && rm -rf src && mkdir src; done"
        )
        seen = await rec.burst(0)
        await rec.ready()
        await rec.write("src/new.py")
        seen = await rec.named("src/new.py", 0)
        for n in range(5):
            step = "rm -rf src && mkdir src" if n % 2 else f"mv src src.again.{n} && mkdir src"
            await rec.sh(step)
            seen = await rec.burst(seen)
            await rec.ready()
            await rec.write(f"src/round{n}.py")
            seen = await rec.named(f"src/round{n}.py", seen)
        assert not [p for p in rec.paths() if ".old." in p or ".again." in p]

    watching(tmp_path, body)


@pytest.mark.parametrize(
    "step", ["rm -rf src/pkg && mkdir src/pkg", "mv src/pkg src/pkg.old && mkdir src/pkg"]
)
def test_subdirectory_of_a_watched_dir_recreated_in_one_step_keeps_triggering(
    tmp_path: Path, step: str
) -> None:
    tree(tmp_path, "src/a.py", "src/pkg/m.py")

    async def body(rec: Recorder) -> None:
        await rec.sh(step)
        seen = await rec.burst(0)
        await rec.ready()
        await rec.write("src/pkg/new.py")
        await rec.named("src/pkg/new.py", seen)

    watching(tmp_path, body)


@pytest.mark.parametrize(
    "step", ["rm -rf src && mkdir -p src/app", "mv src src.old && mkdir -p src/app"]
)
def test_watched_subdirectory_whose_parent_is_recreated_keeps_triggering(
    tmp_path: Path, step: str
) -> None:
    """``paths: [src/app]``: moving ``src`` away moves ``src/app`` with it, and nothing at all
    happens to the directory that is watched; devster notices the new one by itself."""
    tree(tmp_path, "src/app/a.py")

    async def body(rec: Recorder) -> None:
        await rec.sh(step)
        seen = await rec.named("src/app/a.py", 0)
        await rec.ready()
        if "mv" in step:
            await rec.write("src.old/app/old.py")
        await rec.write("src/app/new.py")
        await rec.named("src/app/new.py", seen)
        assert not [p for p in rec.paths() if "old.py" in p]

    watching(tmp_path, body, paths=["src/app"])


def test_observed_project_dir_itself_recreated_keeps_triggering(tmp_path: Path) -> None:
    """``paths: [.]``: the project directory is the watched directory."""
    tree(tmp_path, "w/a.py")

    async def body(rec: Recorder) -> None:
        await asyncio.to_thread(sh, tmp_path, "rm -rf w && mkdir w && echo 1 > w/b.py")
        seen = await rec.named("b.py", 0)
        await rec.ready()
        await rec.write("c.py")
        await rec.named("c.py", seen)

    watching(tmp_path / "w", body, paths=["."])


def test_parent_of_a_watched_file_recreated_in_one_step_keeps_triggering(tmp_path: Path) -> None:
    """A watched file is watched through its directory; that directory may be recreated too."""
    tree(tmp_path, "conf/app.yaml")

    async def body(rec: Recorder) -> None:
        await rec.sh("rm -rf conf && mkdir conf && echo 'a: 2' > conf/app.yaml")
        seen = await rec.named("conf/app.yaml", 0)
        await rec.ready()
        await rec.write("conf/app.yaml", "a: 3\n")
        await rec.named("conf/app.yaml", seen)

    watching(tmp_path, body, paths=["conf/app.yaml"])
