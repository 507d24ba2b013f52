"""The remote wrapper run under real shells (dash and busybox sh), and the resume filter."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from devster_tui.executors.base import ProcessSpec
from devster_tui.executors.chain import (
    CLOSE_STDIN_FRAME,
    ResumeFilter,
    data_frame,
    decode_exit,
    env_frames,
    quote_argv,
    signal_frame,
    wrap_argv,
)

PRINTF = ["printf", "[%s]\n", "a b", "$(touch /tmp/pwned)", "'\"`;|&", "*", "é", ""]
EXPECTED = "[a b]\n[$(touch /tmp/pwned)]\n['\"`;|&]\n[*]\n[é]\n[]\n"

SHELLS = [["sh"]] + ([["busybox", "sh"]] if shutil.which("busybox") else [])


def start(shell: list[str], spec: ProcessSpec, key: str = "") -> subprocess.Popen[bytes]:
    argv = wrap_argv(spec, key=key)
    argv[0:1] = shell
    return subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return any(
        Path(f"/proc/{p}/stat").exists()
        and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[2] == str(pgid)
        and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        for p in os.listdir("/proc")
        if p.isdigit()
    )


def wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise AssertionError("condition not met within the deadline")


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_argv_with_shell_metacharacters_arrives_exactly(shell: list[str], tmp_path: Path) -> None:
    spec = ProcessSpec(task="t", argv=PRINTF, env={}, cwd="/")
    proc = start(shell, spec)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(env_frames({}))
    proc.stdin.flush()
    out = proc.stdout.read().decode()
    assert proc.wait(10) == 0
    proc.stdin.close()
    assert out == EXPECTED


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_env_values_with_newlines_and_dollar_arrive_intact(shell: list[str]) -> None:
    spec = ProcessSpec(task="t", argv=["sh", "-c", 'printf "%s|" "$A" "$B" "$C"'], env={}, cwd="/")
    proc = start(shell, spec)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(env_frames({"A": "x\ny $HOME `id`\n\n", "B": "", "C": "é", "bad-name": "z"}))
    proc.stdin.flush()
    out = proc.stdout.read().decode()
    proc.wait(10)
    proc.stdin.close()
    assert out == "x\ny $HOME `id`\n\n||é|"


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_stdin_frames_reach_the_task_and_close_gives_eof(shell: list[str]) -> None:
    spec = ProcessSpec(task="t", argv=["cat"], env={}, cwd="/", stdin="pipe")
    proc = start(shell, spec)
    assert proc.stdin is not None and proc.stdout is not None
    payload = b"line\n" * 30000 + b"\x00\xff no newline"
    proc.stdin.write(env_frames({}) + data_frame(payload[:70000]) + data_frame(payload[70000:]))
    proc.stdin.write(CLOSE_STDIN_FRAME)
    proc.stdin.flush()
    assert proc.stdout.read() == payload
    assert proc.wait(10) == 0


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_channel_eof_ends_the_whole_remote_group(shell: list[str]) -> None:
    spec = ProcessSpec(
        task="t", argv=["sh", "-c", "sleep 300 & echo $$; wait"], env={}, cwd="/", stop_timeout=1
    )
    proc = start(shell, spec)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(env_frames({}))
    proc.stdin.flush()
    pgid = int(proc.stdout.readline())
    assert group_alive(pgid)
    proc.stdin.close()  # the link dropped / devster died
    assert decode_exit(proc.wait(10)).signal == 15
    wait_for(lambda: not group_alive(pgid))


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_signal_frame_reaches_the_group_not_just_the_leader(shell: list[str]) -> None:
    spec = ProcessSpec(task="t", argv=["sh", "-c", "sleep 300 & echo $$; wait"], env={}, cwd="/")
    proc = start(shell, spec)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(env_frames({}))
    proc.stdin.flush()
    pgid = int(proc.stdout.readline())
    proc.stdin.write(signal_frame(10))  # SIGUSR1: async lists ignore SIGINT
    proc.stdin.flush()
    assert decode_exit(proc.wait(10)).signal == 10
    wait_for(lambda: not group_alive(pgid))
    proc.stdin.close()


def test_a_new_instance_ends_the_previous_one_with_the_same_key(tmp_path: Path) -> None:
    key = f"test-{os.getpid()}-{time.monotonic_ns()}"
    spec = ProcessSpec(task="t", argv=["sh", "-c", "echo $$; exec sleep 300"], env={}, cwd="/")
    first = start(["sh"], spec, key=key)
    assert first.stdin is not None and first.stdout is not None
    first.stdin.write(env_frames({}))
    first.stdin.flush()
    old = int(first.stdout.readline())
    pidfile = Path(os.environ.get("TMPDIR", "/tmp")) / f"devster-{key}.pid"
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip())
    second = start(["sh"], spec, key=key)
    assert second.stdin is not None and second.stdout is not None
    second.stdin.write(env_frames({}))
    second.stdin.flush()
    new = int(second.stdout.readline())
    assert decode_exit(first.wait(10)).signal == 15
    assert not group_alive(old) and group_alive(new)
    second.stdin.close()
    second.wait(10)
    first.stdin.close()


def test_quote_argv_never_joins_raw() -> None:
    line = quote_argv(PRINTF)
    out = subprocess.run(["sh", "-c", line], capture_output=True, timeout=10).stdout.decode()
    assert out == EXPECTED


def test_resume_filter_drops_the_lines_a_reconnected_tail_repeats() -> None:
    got: list[bytes] = []
    f = ResumeFilter(lambda _s, d: got.append(d))
    f("stdout", b"l1\nl2\nl3\n")
    f.resume()
    f("stdout", b"l2\nl3\n")  # tail prints its last lines again
    f("stdout", b"l4\n")
    assert b"".join(got) == b"l1\nl2\nl3\nl4\n"


def test_resume_filter_releases_lines_that_only_looked_like_a_repeat() -> None:
    got: list[bytes] = []
    f = ResumeFilter(lambda _s, d: got.append(d))
    f("stdout", b"a\nb\nc\n")
    f.resume()
    f("stdout", b"a\nx\n")
    assert b"".join(got) == b"a\nb\nc\na\nx\n"


def test_decode_exit_maps_wrapper_codes_to_signals() -> None:
    assert decode_exit(143).signal == 15
    assert decode_exit(3).code == 3
    assert decode_exit(None, "KILL").signal == 9
