"""Issue 4: the cockpit (`devster up`, the real TUI) under an output flood, in a real pty.

Flood: N tasks (default 10) each print R lines/s (default 20,000) of ~80 bytes for D seconds
(default 30) from a paced generator, while `devster up` runs in a pseudo-terminal of 200x50
showing one of them; the terminal output is read and discarded continuously.  Measured:
  - lines lost: every generator line must be in the task's log file under .devster/logs
    (0 lost, 0 duplicated, 0 mixed);
  - event-loop lag p50/p99/max (DEVSTER_LOOP_LAG_FILE, sampled every 50 ms) over the flood;
  - devster's CPU (psutil cpu_times of the devster process and its threads, not the
    generators) as a fraction of one core, over the flood;
  - devster's peak RSS (VmHWM);
  - whether the generators kept their pace (a slow reader would block them).
Baselines: the same generators piped to `cat > file` (the cheapest possible "supervisor":
copy bytes to a file; cat's CPU via wait4), and one generator unpaced to /dev/null.

First frame: `devster up` on a project of 50 idle tasks in the same pty; the time from the
command to the first pty output holding a task name.  Baseline: a minimal Textual app
showing one word in the same pty.

Targets (issue 4): lag p99 <= 100 ms, CPU <= 1 core, RSS <= 200 MB, first frame <= 1.5 s.

Run: python3 benchmarks/tui_flood.py [--tasks 10] [--rate 20000] [--duration 30]
     quick: python3 benchmarks/tui_flood.py --duration 5 --frames 2 --no-baseline
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from devster_tui.tui.lagprobe import ENV_VAR, percentile, read_samples

FLOOD = r"""
import os, sys, time
rate = int(sys.argv[1]); duration = float(sys.argv[2]); tag = sys.argv[3]; done = sys.argv[4]
total = int(rate * duration)
pad = "x" * 56
write = sys.stdout.buffer.write
flush = sys.stdout.buffer.flush
start = time.monotonic()
i = 0
while i < total:
    due = min(total, int((time.monotonic() - start) * rate) + 1)
    if due > i:
        write("".join([f"{tag} {n:010d} {pad}\n" for n in range(i, due)]).encode())
        flush()
        i = due
    time.sleep(0.005)
end = time.monotonic()
with open(done, "w") as f:
    f.write(f"{start} {end} {total}\n")
"""
"""A paced generator: ``rate`` numbered lines of ~80 bytes a second for ``duration`` s,
written every ~5 ms; it catches up when a write blocked, and records start, end, lines."""

LINE = re.compile(rb"^(t\d+) (\d{10}) x{56}$")

MINIMAL_APP = r"""
from textual.app import App
from textual.widgets import Static

class Minimal(App[None]):
    def compose(self):
        yield Static("baselineword")

Minimal().run()
"""
"""The first-frame baseline: the smallest Textual app, one word on the screen."""


PYCACHE = Path(tempfile.mkdtemp(prefix="devster-bench-pycache-"))
"""Bytecode cache of every command the benchmark runs (removed at the end)."""

IDLE_LOOP = r"""
import asyncio, sys
from pathlib import Path
from devster_tui.tui.lagprobe import LagProbe

async def main():
    probe = LagProbe(Path(sys.argv[1]))
    probe.start()
    await asyncio.sleep(float(sys.argv[2]))
    await probe.aclose()

asyncio.run(main())
"""
"""The loop-lag baseline: an idle asyncio loop with the same probe, run beside the flood
(what the machine's scheduling alone costs a loop: 2 cores shared with the generators)."""


def devster_bin() -> str:
    """Path of the installed ``devster`` command."""
    found = shutil.which("devster")
    if found is None:
        sys.exit("devster is not on PATH: run `python3 -m pip install -e .` first")
    return found


class PtyRun:
    """A command in a new pseudo-terminal of ``cols`` x ``rows``; output read and dropped.

    Args:
        argv: The command.
        cwd: Its working directory.
        cols: Terminal width.
        rows: Terminal height.
        env: Extra environment variables.
        markers: Byte strings; :attr:`first_marker` is when the output first held one.
    """

    def __init__(
        self,
        argv: Sequence[str],
        cwd: Path,
        cols: int,
        rows: int,
        env: dict[str, str] | None = None,
        markers: Sequence[bytes] = (),
    ) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.master = master
        self.markers = list(markers)
        self.bytes_read = 0
        self.first_marker: float | None = None
        self.tail = b""
        """The last 4 KiB the terminal received (for error reports)."""
        full_env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
        # Bytecode as an installed devster has it (pip compiles on install): cached in one
        # folder for the whole benchmark even where PYTHONDONTWRITEBYTECODE is set.
        full_env.pop("PYTHONDONTWRITEBYTECODE", None)
        full_env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
        full_env.update(env or {})

        def controlling_tty() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=slave,
            stdout=slave,
            stderr=slave,  # Textual draws on stderr
            env=full_env,
            preexec_fn=controlling_tty,
        )
        os.close(slave)
        self._reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        tail = b""
        longest = max((len(m) for m in self.markers), default=0)
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.bytes_read += len(data)
            self.tail = (self.tail + data)[-4096:]
            if self.first_marker is None and self.markers:
                window = tail + data
                if any(m in window for m in self.markers):
                    self.first_marker = time.monotonic()
                tail = window[-longest:]

    def wait_marker(self, within: float) -> float:
        """Seconds from the command to the first marker; exits the benchmark after
        ``within`` seconds without one (killing the command, showing the screen's tail)."""
        deadline = time.monotonic() + within
        while self.first_marker is None:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                if self.proc.poll() is None:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                sys.exit(
                    f"no first frame from {self.proc.args!r} within {within:.0f}s "
                    f"(exit {self.proc.wait(10)}); last output: {self.tail[-1500:]!r}"
                )
            time.sleep(0.005)
        return self.first_marker - self.started

    def send(self, keys: bytes) -> None:
        """Type ``keys`` into the terminal."""
        os.write(self.master, keys)

    def wait(self, timeout: float) -> int:
        """Wait for the command to exit (kill it after ``timeout``); its exit status."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait(10)
            print(f"  ! {self.proc.args!r} did not exit within {timeout:.0f}s: killed")
        self._reader.join(10)
        os.close(self.master)
        return code


def flood_project(root: Path, tasks: int, rate: int, duration: float) -> list[str]:
    """Write the flood project and generator into ``root``; the task names."""
    (root / "flood.py").write_text(FLOOD)
    names = [f"t{i}" for i in range(tasks)]
    body = ["version: 1", "project: flood", "logs: {max_bytes: 4GiB, backups: 0}", "tasks:"]
    for name in names:
        done = root / f"{name}.done"
        body += [
            f"  {name}:",
            f"    cmd: [python3, flood.py, '{rate}', '{duration}', {name}, '{done}']",
            "    kind: job",
        ]
    (root / "devster.yaml").write_text("\n".join(body) + "\n")
    return names


def check_logs(root: Path, names: Sequence[str], expect: int) -> tuple[int, int, int, int]:
    """(lines, lost, duplicated, mixed) over the tasks' stdout log files."""
    total = lost = dup = mixed = 0
    for name in names:
        path = root / ".devster" / "logs" / f"{name}.stdout.log"
        data = path.read_bytes() if path.exists() else b""
        nxt = 0
        for raw in data.splitlines():
            m = LINE.match(raw)
            if m is None or m.group(1) != name.encode():
                mixed += 1
                continue
            n = int(m.group(2))
            if n < nxt:
                dup += 1
            elif n > nxt:
                lost += n - nxt
            nxt = n + 1
            total += 1
        lost += max(0, expect - nxt)
    return total, lost, dup, mixed


def gen_times(root: Path, names: Sequence[str]) -> list[tuple[float, float, int]]:
    """(start, end, lines) of each finished generator."""
    result = []
    for name in names:
        start, end, lines = (root / f"{name}.done").read_text().split()
        result.append((float(start), float(end), int(lines)))
    return result


def vm_hwm_kib(pid: int) -> int:
    """Peak resident set size of ``pid`` (VmHWM), in KiB; 0 when gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_flood(args: argparse.Namespace) -> dict[str, float]:
    """The flood run of `devster up` in the pty; prints and returns the figures."""
    root = Path(tempfile.mkdtemp(prefix="devster-flood-"))
    names = flood_project(root, args.tasks, args.rate, args.duration)
    lag_file = root / "lag.txt"
    expect = int(args.rate * args.duration)
    pty = PtyRun(
        [*(args.command.split() if args.command else [devster_bin()]), "up"],
        root,
        args.cols,
        args.rows,
        env={ENV_VAR: str(lag_file)},
        markers=[n.encode() + b" " for n in names],
    )
    proc = psutil.Process(pty.proc.pid)
    pty.wait_marker(30)
    idle_file = root / "idle-lag.txt"
    idle = subprocess.Popen(
        [sys.executable, "-c", IDLE_LOOP, str(idle_file), str(args.duration)],
        env=dict(os.environ, PYTHONPYCACHEPREFIX=str(PYCACHE)),
    )
    t0 = time.monotonic()
    cpu0 = proc.cpu_times()
    rss_peak = 0
    done = [root / f"{n}.done" for n in names]
    deadline = t0 + args.duration * 3 + 30
    while not all(p.exists() for p in done):
        if time.monotonic() > deadline:
            pty.send(b"q")
            pty.wait(60)
            sys.exit("the generators did not finish in time")
        rss_peak = max(rss_peak, proc.memory_info().rss)
        time.sleep(0.25)
    t1 = time.monotonic()
    cpu1 = proc.cpu_times()
    hwm = vm_hwm_kib(proc.pid) * 1024
    threads = proc.num_threads()
    term_bytes = pty.bytes_read
    pty.send(b"q")
    code = pty.wait(120)
    if code != 0:
        print(f"  ! devster up exited {code}: {pty.tail[-2000:]!r}")
    wall = t1 - t0
    cpu = (cpu1.user - cpu0.user + cpu1.system - cpu0.system) / wall
    idle.wait(60)
    idle_lags = [lag for _, lag in read_samples(idle_file)]
    idle_p99 = percentile(idle_lags, 99)
    samples = read_samples(lag_file)
    window = [(t, lag) for t, lag in samples if t0 <= t <= t1] or samples
    flood = [lag for _, lag in window]
    late = sorted(window, key=lambda s: -s[1])[:5]
    p50 = percentile(flood, 50)
    p99 = percentile(flood, 99)
    worst = max(flood)
    lines, lost, dup, mixed = check_logs(root, names, expect)
    gens = gen_times(root, names)
    slowest = max(end - start for start, end, _ in gens)
    rss = max(rss_peak, hwm)
    print(
        f"flood: {args.tasks} tasks x {args.rate:,} lines/s x {args.duration:g}s "
        f"(TUI {args.cols}x{args.rows}, showing t0)"
    )
    print(
        f"  lines in log files {lines:,} of {expect * args.tasks:,}: "
        f"lost {lost} dup {dup} mixed {mixed}"
    )
    print(
        f"  generators: slowest took {slowest:.2f}s for {args.duration:g}s of output "
        f"({expect * args.tasks / slowest:,.0f} lines/s overall)"
    )
    print(
        f"  loop lag over {len(flood)} samples: p50 {p50 * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {worst * 1000:.1f} ms (target p99 <= 100 ms)"
    )
    print(
        f"  baseline idle asyncio loop beside it, same probe: p50 "
        f"{percentile(idle_lags, 50) * 1000:.1f} ms, p99 {idle_p99 * 1000:.1f} ms, "
        f"max {max(idle_lags) * 1000:.1f} ms; ratio p99 {p99 / max(idle_p99, 1e-4):.1f}x"
    )
    print(f"  devster CPU {cpu:.2f} core over {wall:.1f}s ({threads} threads; target <= 1 core)")
    print("  latest: " + ", ".join(f"+{t - t0:.1f}s {v * 1000:.0f} ms" for t, v in late))
    print(f"  devster peak RSS {rss / 2**20:.0f} MB (target <= 200 MB)")
    print(f"  terminal output read {term_bytes / wall / 1024:.0f} KiB/s; devster exit {code}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "lost": lost + dup + mixed,
        "p99": p99,
        "cpu": cpu,
        "rss": rss,
        "gen_wall": slowest,
    }


def run_cat_baseline(args: argparse.Namespace) -> float:
    """The same generators piped to ``cat > file``: cat's CPU as a fraction of one core."""
    root = Path(tempfile.mkdtemp(prefix="devster-flood-base-"))
    (root / "flood.py").write_text(FLOOD)
    gens: list[subprocess.Popen[bytes]] = []
    cats: list[tuple[int, Path]] = []
    t0 = time.monotonic()
    for i in range(args.tasks):
        out = root / f"t{i}.txt"
        gen = subprocess.Popen(
            [
                sys.executable,
                "flood.py",
                str(args.rate),
                str(args.duration),
                f"t{i}",
                str(root / f"t{i}.done"),
            ],
            cwd=root,
            stdout=subprocess.PIPE,
        )
        assert gen.stdout is not None
        with out.open("wb") as sink:
            cat = subprocess.Popen(["cat"], stdin=gen.stdout, stdout=sink)
        gen.stdout.close()
        gens.append(gen)
        cats.append((cat.pid, out))
    cpu = 0.0
    for pid, _ in cats:
        _, _, usage = os.wait4(pid, 0)
        cpu += usage.ru_utime + usage.ru_stime
    wall = time.monotonic() - t0
    for gen in gens:
        gen.wait(30)
    names = [f"t{i}" for i in range(args.tasks)]
    slowest = max(end - start for start, end, _ in gen_times(root, names))
    print(
        f"baseline `gen | cat > file` x {args.tasks}: cat CPU {cpu / wall:.3f} core, "
        f"generators slowest {slowest:.2f}s"
    )
    shutil.rmtree(root, ignore_errors=True)
    return cpu / wall


def run_devnull_baseline() -> float:
    """One generator unpaced (1M lines at a rate it cannot reach) to /dev/null: lines/s."""
    root = Path(tempfile.mkdtemp(prefix="devster-flood-null-"))
    (root / "flood.py").write_text(FLOOD)
    rate, duration = 5_000_000, 0.2
    t0 = time.monotonic()
    with open(os.devnull, "wb") as sink:
        gen = subprocess.Popen(
            [sys.executable, "flood.py", str(rate), str(duration), "t0", str(root / "t0.done")],
            cwd=root,
            stdout=sink,
        )
        gen.wait(60)
    start, end, total = gen_times(root, ["t0"])[0]
    del t0
    shutil.rmtree(root, ignore_errors=True)
    return total / (end - start)


def run_first_frames(args: argparse.Namespace) -> list[float]:
    """`devster up` on 50 idle tasks: seconds from the command to a task name on screen."""
    root = Path(tempfile.mkdtemp(prefix="devster-frame-"))
    names = [f"svc{i:02d}" for i in range(args.frame_tasks)]
    body = ["version: 1", "project: frames", "tasks:"]
    for name in names:
        body += [f"  {name}:", "    cmd: [sleep, '600']"]
    (root / "devster.yaml").write_text("\n".join(body) + "\n")
    times = []
    for i in range(args.frames + 1):  # run 0 warms the bytecode cache and is not counted
        shutil.rmtree(root / ".devster", ignore_errors=True)
        pty = PtyRun(
            [devster_bin(), "up"],
            root,
            args.cols,
            args.rows,
            markers=[n.encode() for n in names],
        )
        took = pty.wait_marker(30)
        if i:
            times.append(took)
        else:
            print(f"first frame, {args.frame_tasks} tasks, cold bytecode cache: {took:.3f}s")
        pty.send(b"q")
        code = pty.wait(60)
        if code != 0:
            print(f"  ! devster up exited {code}: {pty.tail[-2000:]!r}")
    shutil.rmtree(root, ignore_errors=True)
    return times


def run_minimal_frames(args: argparse.Namespace) -> list[float]:
    """The baseline: a one-word Textual app's first frame in the same pty."""
    root = Path(tempfile.mkdtemp(prefix="devster-frame-base-"))
    (root / "minimal.py").write_text(MINIMAL_APP)
    times = []
    for i in range(args.frames + 1):
        pty = PtyRun(
            [sys.executable, "minimal.py"], root, args.cols, args.rows, markers=[b"baselineword"]
        )
        took = pty.wait_marker(30)
        if i:
            times.append(took)
        pty.proc.terminate()
        pty.wait(30)
    shutil.rmtree(root, ignore_errors=True)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10, help="flooding tasks (10)")
    parser.add_argument("--rate", type=int, default=20_000, help="lines/s per task (20000)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of flood (30)")
    parser.add_argument("--cols", type=int, default=200)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--frame-tasks", type=int, default=50, help="tasks for the first frame")
    parser.add_argument("--frames", type=int, default=5, help="first-frame repetitions")
    parser.add_argument("--no-baseline", action="store_true", help="skip the baselines")
    parser.add_argument("--no-flood", action="store_true", help="only the first frame")
    parser.add_argument(
        "--command", help="run the flood with this instead of `devster` (e.g. under a profiler)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the flood project folder")
    args = parser.parse_args()
    ok = True
    if not args.no_flood:
        figures = run_flood(args)
        ok &= figures["lost"] == 0 and figures["p99"] <= 0.1
        ok &= figures["cpu"] <= 1.0 and figures["rss"] <= 200 * 2**20
        if not args.no_baseline:
            cat_cpu = run_cat_baseline(args)
            print(f"  ratio: devster CPU / cat CPU = {figures['cpu'] / cat_cpu:.1f}x")
            fastest = run_devnull_baseline()
            print(
                f"baseline one generator unpaced to /dev/null: {fastest:,.0f} lines/s "
                f"(the flood asks {args.rate / fastest:.1%} of that per task)"
            )
    if args.frames > 0:
        frames = run_first_frames(args)
        first = statistics.median(frames)
        print(
            f"first frame, {args.frame_tasks} tasks: median {first:.3f}s, max {max(frames):.3f}s "
            f"over {len(frames)} runs (target <= 1.5 s)"
        )
        ok &= max(frames) <= 1.5
        if not args.no_baseline:
            base = statistics.median(run_minimal_frames(args))
            print(
                f"baseline one-word Textual app first frame: median {base:.3f}s; "
                f"ratio {first / base:.2f}x"
            )
    print("targets: " + ("all met" if ok else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        shutil.rmtree(PYCACHE, ignore_errors=True)
