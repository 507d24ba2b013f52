"""``devster up --no-tui`` and ``devster run`` end to end, in subprocesses."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEADLINE = 20.0


class Devster:
    """A ``devster`` subprocess whose stdout lines are collected by a reader thread."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devster_tui", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._queue.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self._queue.put(None)

    def expect(self, pattern: str, limit: float = DEADLINE) -> str:
        """Wait for a stdout line matching ``pattern``; fail after ``limit`` seconds."""
        regex = re.compile(pattern)
        for line in self.lines:
            if regex.search(line):
                return line
        deadline = time.monotonic() + limit
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines))
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if item is None:
                raise AssertionError(f"output ended without {pattern!r}:\n" + "\n".join(self.lines))
            self.lines.append(item)
            if regex.search(item):
                return item

    def finish(self, limit: float = DEADLINE) -> tuple[int, str, str]:
        """Wait for exit; returns (code, stdout, stderr)."""
        try:
            code = self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self._reader.join(timeout=limit)
        while True:
            item = self._queue.get_nowait() if not self._queue.empty() else None
            if item is None:
                break
            self.lines.append(item)
        assert self.proc.stderr is not None
        return code, "\n".join(self.lines), self.proc.stderr.read().decode()


def project(tmp_path: Path, yaml: str) -> Path:
    (tmp_path / "devster.yaml").write_text(textwrap.dedent(yaml).replace("PY", sys.executable))
    return tmp_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_up_no_tui_prefixes_lines_marks_stderr_and_uses_no_escape_codes_when_piped(
    tmp_path: Path,
) -> None:
    project(
        tmp_path,
        """
        tasks:
          hello: {cmd: "echo hello; echo oops >&2", kind: job}
          a-much-longer-name: {cmd: "printf 'no newline'", kind: job}
        """,
    )
    code, out, err = Devster(tmp_path, "up", "--no-tui").finish()
    assert code == 0, err
    assert "\x1b" not in out
    lines = out.splitlines()
    assert "hello              | hello" in lines
    assert "hello              ! oops" in lines
    assert "a-much-longer-name | no newline" in lines
    assert "hello              * succeeded" in lines


def test_up_no_tui_exits_1_when_a_task_fails_or_is_blocked(tmp_path: Path) -> None:
    project(
        tmp_path,
        """
        tasks:
          build: {cmd: "exit 4", kind: job}
          app: {cmd: "echo never", depends_on: {build: {condition: succeeded}}}
        """,
    )
    code, out, _ = Devster(tmp_path, "up", "--no-tui").finish()
    assert code == 1
    assert re.search(r"^app\s+\* blocked: dependency build failed: exit 4", out, re.M)


def test_up_no_tui_starts_only_the_named_tasks_and_their_dependencies(tmp_path: Path) -> None:
    project(
        tmp_path,
        """
        tasks:
          base: {cmd: "echo base", kind: job}
          top: {cmd: "echo top", kind: job, depends_on: {base: {condition: succeeded}}}
          other: {cmd: "echo other", kind: job}
        """,
    )
    code, out, _ = Devster(tmp_path, "up", "--no-tui", "top").finish()
    assert code == 0
    assert re.search(r"^top\s+\| top$", out, re.M)
    assert "other" not in out


def test_up_with_unknown_task_or_broken_file_exits_2(tmp_path: Path) -> None:
    project(tmp_path, 'tasks: {a: {cmd: "true"}}')
    code, _, err = Devster(tmp_path, "up", "--no-tui", "nope").finish()
    assert code == 2 and "no such task: nope" in err
    (tmp_path / "devster.yaml").write_text("tasks: {a: {cmd: true, bogus: 1}}\n")
    code, _, err = Devster(tmp_path, "up", "--no-tui").finish()
    assert code == 2 and "bogus" in err


def test_first_sigint_stops_gracefully_in_reverse_order_and_exits_130(tmp_path: Path) -> None:
    project(
        tmp_path,
        """
        tasks:
          db: {cmd: "trap 'echo db bye; exit 0' TERM; echo db up; while :; do sleep 0.05; done"}
          api:
            cmd: "trap 'echo api bye; exit 0' TERM; echo api up; while :; do sleep 0.05; done"
            depends_on: [db]
        """,
    )
    dev = Devster(tmp_path, "up", "--no-tui")
    dev.expect(r"^db\s+\| db up")
    dev.expect(r"^api\s+\| api up")
    dev.proc.send_signal(signal.SIGINT)
    code, out, _ = dev.finish()
    assert code == 130
    lines = out.splitlines()
    api_bye = next(i for i, line in enumerate(lines) if re.match(r"api\s+\| api bye", line))
    db_bye = next(i for i, line in enumerate(lines) if re.match(r"db\s+\| db bye", line))
    assert api_bye < db_bye, "dependents must stop before their dependencies"


def test_second_sigint_kills_a_task_that_ignores_sigterm_at_once(tmp_path: Path) -> None:
    project(
        tmp_path,
        """
        tasks:
          stubborn:
            cmd: "trap '' TERM; echo pid $$$$; while :; do sleep 0.05; done"
            stop: {timeout: 60s}
        """,
    )
    dev = Devster(tmp_path, "up", "--no-tui")
    pid = int(dev.expect(r"\| pid \d+").rsplit(" ", 1)[1])
    dev.proc.send_signal(signal.SIGINT)
    dev.expect(r"stopping \(shutdown, SIGTERM\)")
    assert pid_alive(pid)
    started = time.monotonic()
    dev.proc.send_signal(signal.SIGINT)
    code, out, _ = dev.finish(limit=10)
    assert code == 130
    assert time.monotonic() - started < 5, "the second Ctrl-C must not wait for the grace period"
    assert re.search(r"stubborn\s+\* killed by SIGKILL", out)
    assert not pid_alive(pid)


def test_restart_and_failure_status_lines_are_printed(tmp_path: Path) -> None:
    project(
        tmp_path,
        """
        tasks:
          flaky:
            cmd: "echo try; exit 1"
            restart: {policy: on-failure, max_restarts: 1, backoff: {initial: 10ms, jitter: 0}}
        """,
    )
    code, out, _ = Devster(tmp_path, "up", "--no-tui").finish()
    assert code == 1
    assert re.search(r"^flaky\s+\* exited 1 after", out, re.M)
    assert re.search(r"^flaky\s+\* restarting in 10ms \(attempt 1\)", out, re.M)
    assert re.search(
        r"^flaky\s+\* failed: restarted 1 times within 60s .*\(last: exit 1\)", out, re.M
    )


def test_run_exits_0_when_the_jobs_succeed_and_stops_the_dependencies_it_started(
    tmp_path: Path,
) -> None:
    project(
        tmp_path,
        """
        tasks:
          db:
            cmd: "trap 'echo db stopped; exit 0' TERM; echo ready; while :; do sleep 0.05; done"
            ready_log: ready
          tests: {cmd: "echo testing", kind: job, depends_on: {db: {condition: log_ready}}}
        """,
    )
    code, out, err = Devster(tmp_path, "run", "tests").finish()
    assert code == 0, out + err
    assert re.search(r"^tests\s+\| testing$", out, re.M)
    assert re.search(r"^db\s+\| db stopped$", out, re.M)


def test_run_exits_1_when_a_job_fails(tmp_path: Path) -> None:
    project(tmp_path, 'tasks: {tests: {cmd: "echo 1 failed; exit 1", kind: job}}')
    code, out, _ = Devster(tmp_path, "run", "tests").finish()
    assert code == 1
    assert re.search(r"^tests\s+\| 1 failed$", out, re.M)


def test_run_refuses_a_service_with_a_message(tmp_path: Path) -> None:
    project(tmp_path, 'tasks: {web: {cmd: "sleep 30"}}')
    code, _, err = Devster(tmp_path, "run", "web").finish()
    assert code == 2
    assert "web is a service" in err


def test_quickstart_example_runs_end_to_end_headless(tmp_path: Path) -> None:
    example = tmp_path / "quickstart"
    shutil.copytree(REPO / "examples" / "quickstart", example)
    shutil.rmtree(example / ".devster", ignore_errors=True)
    config = example / "devster.yaml"
    config.write_text(config.read_text().replace("8765", str(free_port())))
    dev = Devster(example, "up", "--no-tui")
    dev.expect(r"^build\s+\* succeeded")
    dev.expect(r"^server\s+\* healthy", limit=30)
    dev.expect(r"^worker\s+\| job 1: ")
    assert not any(line.startswith("integration-tests") and "started" in line for line in dev.lines)
    dev.proc.send_signal(signal.SIGINT)
    code, out, _ = dev.finish(limit=30)
    assert code == 130
    assert re.search(r"^server\s+\* stopped", out, re.M)
    assert "failed" not in out
