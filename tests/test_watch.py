"""File observers with real files: bursts, save styles, junk files, late paths, limits."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from devster_tui.config.schema import FilesObserver
from devster_tui.watch.files import Burst, FileWatcher
from devster_tui.watch.filters import PathFilter

DEADLINE = 10.0


class Recorder:
    """A running watcher and the bursts it fired."""

    def __init__(self, watcher: FileWatcher) -> None:
        self.watcher = watcher
        self.bursts: list[Burst] = []
        self.changed = asyncio.Event()

    def on_fire(self, burst: Burst) -> None:
        self.bursts.append(burst)
        self.changed.set()

    async def next_burst(self, after: int) -> Burst:
        """Wait for burst number ``after + 1``."""
        async with asyncio.timeout(DEADLINE):
            while len(self.bursts) <= after:
                self.changed.clear()
                await self.changed.wait()
        return self.bursts[after]

    async def ready(self) -> None:
        await asyncio.wait_for(self.watcher.ready.wait(), DEADLINE)


def watching(root: Path, body: Callable[[Recorder], Awaitable[None]], **spec: object) -> None:
    """Run ``body`` with a watcher over ``root`` (paths default to ``src``)."""

    async def main() -> None:
        holder: list[Recorder] = []
        watcher = FileWatcher(
            FilesObserver.model_validate({"paths": ["src"], **spec}),
            root,
            lambda b: holder[0].on_fire(b),
        )
        rec = Recorder(watcher)
        holder.append(rec)
        task = asyncio.create_task(watcher.run())
        try:
            await rec.ready()
            await body(rec)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(asyncio.wait_for(main(), 60))


def src(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("x = 1\n")
    return tmp_path / "src"


# --------------------------------------------------------------------------- save styles


def test_in_place_write_fires_exactly_one_burst(tmp_path: Path) -> None:
    d = src(tmp_path)

    async def body(rec: Recorder) -> None:
        (d / "a.py").write_text("x = 2\n")
        burst = await rec.next_burst(0)
        assert burst.paths == ("src/a.py",)
        (d / "b.py").write_text("sentinel")
        assert (await rec.next_burst(1)).paths == ("src/b.py",)

    watching(tmp_path, body)


def test_vim_style_save_with_4913_probe_and_rename_fires_once_and_names_only_the_file(
    tmp_path: Path,
) -> None:
    d = src(tmp_path)

    async def body(rec: Recorder) -> None:
        (d / "4913").write_text("")
        (d / "4913").unlink()
        (d / ".a.py.swp").write_text("swap")
        os.rename(d / "a.py", d / "a.py~")
        (d / "a.py").write_text("x = 3\n")
        (d / "a.py~").unlink()
        burst = await rec.next_burst(0)
        assert set(burst.paths) == {"src/a.py"}
        (d / "b.py").write_text("sentinel")
        assert (await rec.next_burst(1)).paths == ("src/b.py",)

    watching(tmp_path, body)


def test_sed_in_place_edit_fires_once(tmp_path: Path) -> None:
    d = src(tmp_path)

    async def body(rec: Recorder) -> None:
        await asyncio.to_thread(
            subprocess.run, ["sed", "-i", "s/1/2/", str(d / "a.py")], check=True
        )
        burst = await rec.next_burst(0)
        assert "src/a.py" in burst.paths
        (d / "b.py").write_text("sentinel")
        assert (await rec.next_burst(1)).paths == ("src/b.py",)

    watching(tmp_path, body)


def test_chmod_and_touch_a_are_attribute_changes_that_fire_nothing(tmp_path: Path) -> None:
    d = src(tmp_path)

    async def body(rec: Recorder) -> None:
        os.chmod(d / "a.py", 0o600)
        await asyncio.to_thread(subprocess.run, ["touch", "-a", str(d / "a.py")], check=True)
        (d / "b.py").write_text("sentinel")
        burst = await rec.next_burst(0)
        assert burst.paths == ("src/b.py",)
        assert len(rec.bursts) == 1

    watching(tmp_path, body)


def test_editor_junk_files_never_fire(tmp_path: Path) -> None:
    d = src(tmp_path)

    async def body(rec: Recorder) -> None:
        for junk in (".a.py.swp", ".a.py.swx", "4913", "a.py~", ".#a.py", "#a.py#"):
            (d / junk).write_text("junk")
        (d / "__pycache__").mkdir()
        (d / "__pycache__" / "a.cpython-311.pyc").write_text("junk")
        (d / "b.py").write_text("sentinel")
        burst = await rec.next_burst(0)
        assert burst.paths == ("src/b.py",)

    watching(tmp_path, body)


def test_default_ignores_can_be_switched_off(tmp_path: Path) -> None:
    d = src(tmp_path)

    async def body(rec: Recorder) -> None:
        (d / ".a.py.swp").write_text("swap")
        assert (await rec.next_burst(0)).paths == ("src/.a.py.swp",)

    watching(tmp_path, body, default_ignores=False)


def test_include_and_ignore_globs_decide_what_counts(tmp_path: Path) -> None:
    d = src(tmp_path)
    (d / "gen").mkdir()

    async def body(rec: Recorder) -> None:
        (d / "notes.txt").write_text("no")
        (d / "gen" / "out.py").write_text("no")
        (d / "c.py").write_text("yes")
        assert (await rec.next_burst(0)).paths == ("src/c.py",)

    watching(tmp_path, body, include=["*.py"], ignore=["gen/"])


@pytest.mark.slow
def test_git_checkout_of_5000_files_is_one_burst(tmp_path: Path) -> None:
    d = src(tmp_path)
    for i in range(50):
        sub = d / f"m{i}"
        sub.mkdir()
        for j in range(100):
            (sub / f"f{j}.py").write_text(f"v = {i * 100 + j}\n")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q", "-b", "one"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    subprocess.run([*git, "checkout", "-qb", "two"], check=True)
    for i in range(50):
        for j in range(100):
            (d / f"m{i}" / f"f{j}.py").write_text(f"v = {-(i * 100 + j)}\n")
    subprocess.run([*git, "commit", "-qam", "two"], check=True)

    async def body(rec: Recorder) -> None:
        await asyncio.to_thread(subprocess.run, [*git, "checkout", "-q", "one"], check=True)
        burst = await rec.next_burst(0)
        assert burst.count >= 5000
        (d / "sentinel.py").write_text("x")
        assert (await rec.next_burst(1)).paths == ("src/sentinel.py",)

    watching(tmp_path, body)


# --------------------------------------------------------------------------- paths


def test_a_path_that_appears_later_starts_being_watched(tmp_path: Path) -> None:
    async def body(rec: Recorder) -> None:
        (tmp_path / "later" / "deep").mkdir(parents=True)
        await rec.next_burst(0)
        await rec.ready()
        (tmp_path / "later" / "deep" / "x.py").write_text("1")
        assert (await rec.next_burst(1)).paths == ("later/deep/x.py",)

    watching(tmp_path, body, paths=["later/deep"])


def test_a_watched_root_deleted_and_recreated_keeps_working(tmp_path: Path) -> None:
    d = src(tmp_path)

    async def body(rec: Recorder) -> None:
        shutil.rmtree(d)
        await rec.next_burst(0)
        await rec.ready()
        d.mkdir()
        await rec.next_burst(1)
        await rec.ready()
        (d / "new.py").write_text("1")
        assert "src/new.py" in (await rec.next_burst(2)).paths

    watching(tmp_path, body)


def test_a_single_watched_file_survives_saves_by_rename(tmp_path: Path) -> None:
    (tmp_path / "conf.yaml").write_text("a: 1\n")

    async def body(rec: Recorder) -> None:
        for n in range(2):
            tmp = tmp_path / ".conf.yaml.tmp"
            tmp.write_text(f"a: {n + 2}\n")
            os.rename(tmp, tmp_path / "conf.yaml")
            assert (await rec.next_burst(n)).paths == ("conf.yaml",)
        (tmp_path / "other.txt").write_text("not watched")
        (tmp_path / "conf.yaml").write_text("a: 9\n")
        assert (await rec.next_burst(2)).paths == ("conf.yaml",)

    watching(tmp_path, body, paths=["conf.yaml"])


def test_symlink_loop_does_not_hang_start_up_and_changes_still_fire(tmp_path: Path) -> None:
    d = src(tmp_path)
    os.symlink("..", d / "loop")
    os.symlink(".", d / "self")

    async def body(rec: Recorder) -> None:
        (d / "a.py").write_text("x = 5\n")
        assert (await rec.next_burst(0)).paths == ("src/a.py",)

    watching(tmp_path, body)


# --------------------------------------------------------------------------- limits

LIMIT_SCRIPT = """
import asyncio, sys
from pathlib import Path
from devster_tui.config.schema import FilesObserver
from devster_tui.watch.files import FileWatcher, WatchLimitError

async def main():
    root = Path(sys.argv[1])
    fired = asyncio.Event()
    warnings = []
    spec = FilesObserver(paths=["src"], poll_fallback=sys.argv[2] == "fallback")
    w = FileWatcher(spec, root, lambda b: fired.set(), on_warning=warnings.append)
    task = asyncio.create_task(w.run())
    ready = asyncio.create_task(w.ready.wait())
    await asyncio.wait([task, ready], timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        exc = task.exception()
        sys.stdout.write(f"{type(exc).__name__}: {exc}\\n")
        return
    (root / "src" / "m0" / "x.py").write_text("1")
    await asyncio.wait_for(fired.wait(), 10)
    sys.stdout.write("fired after: " + "; ".join(warnings) + "\\n")
    task.cancel()

asyncio.run(main())
"""


def _limited(tmp_path: Path, mode: str) -> str:
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not available")
    d = src(tmp_path)
    for i in range(10):
        (d / f"m{i}").mkdir()
    script = tmp_path / "limit.py"
    script.write_text(textwrap.dedent(LIMIT_SCRIPT))
    shell = (
        "echo 4 > /proc/sys/user/max_inotify_watches && "
        f"exec {sys.executable} {script} {tmp_path} {mode}"
    )
    proc = subprocess.run(
        ["unshare", "-Ur", "sh", "-c", shell],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    if proc.returncode != 0 and "unshare" in proc.stderr:
        pytest.skip(f"user namespaces unavailable: {proc.stderr.strip()}")
    return proc.stdout + proc.stderr


def test_running_out_of_inotify_watches_names_the_sysctl_to_raise(tmp_path: Path) -> None:
    out = _limited(tmp_path, "strict")
    assert "WatchLimitError" in out, out
    assert "fs.inotify.max_user_watches" in out
    assert "poll_fallback" in out


def test_running_out_of_inotify_watches_falls_back_to_polling_when_configured(
    tmp_path: Path,
) -> None:
    out = _limited(tmp_path, "fallback")
    assert "fired after:" in out, out
    assert "polling instead" in out


# --------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("rel", "counts"),
    [
        ("a.py", True),
        ("pkg/b.py", True),
        ("notes.md", False),
        ("gen/c.py", False),
        ("pkg/gen/c.py", False),
        ("a.pyc", False),
        (".git/HEAD", False),
        ("node_modules/x/y.py", False),
        (".a.py.swp", False),
        ("4913", False),
        ("a.py~", False),
        (".#a.py", False),
    ],
)
def test_path_filter_include_ignore_and_default_ignores(rel: str, counts: bool) -> None:
    f = PathFilter.of(["*.py"], ["gen"], True)
    assert f.counts(rel) is counts


def test_path_globs_with_a_slash_match_from_the_root_and_double_star_spans_dirs() -> None:
    f = PathFilter.of(["src/**/*.ts"], ["src/vendor/**"], True)
    assert f.counts("src/a/b/c.ts")
    assert f.counts("src/c.ts")
    assert not f.counts("lib/c.ts")
    assert not f.counts("src/vendor/x.ts")


def test_a_burst_stays_open_while_git_holds_its_index_lock(tmp_path: Path) -> None:
    """Pins: a checkout stalled by load (longer than any quiet window) firing twice."""
    d = src(tmp_path)
    (tmp_path / ".git").mkdir()
    lock = tmp_path / ".git" / "index.lock"
    lock.write_text("")

    async def body(rec: Recorder) -> None:
        (d / "a.py").write_text("x = 2\n")
        # Ten debounce windows pass without a firing while the lock exists...
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                await rec.next_burst(0)
        assert rec.bursts == []
        lock.unlink()
        # ...and the burst fires once git lets go.
        burst = await rec.next_burst(0)
        assert burst.paths == ("src/a.py",)

    watching(tmp_path, body)
