"""The local executor starts tasks clean: own session, fds 0-2 only, default signals, exact argv."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pytest

from devster_tui.executors.base import (
    Executor,
    ExitStatus,
    Process,
    ProcessSpec,
    SpawnError,
    Stream,
)
from devster_tui.executors.guard import start_time
from devster_tui.executors.local import LocalExecutor, LocalProcess
from tests.helpers import async_wait_for, process_alive, run

PY = sys.executable


class Sink:
    """Collects a process's output chunks and end-of-file calls."""

    def __init__(self) -> None:
        self.data: dict[Stream, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self.eof: list[Stream] = []

    def out(self, stream: Stream, chunk: bytes) -> None:
        assert chunk, "empty chunks must never be delivered"
        assert stream not in self.eof, "output after end of file"
        self.data[stream] += chunk

    def on_eof(self, stream: Stream) -> None:
        self.eof.append(stream)

    def text(self, stream: Stream = "stdout") -> str:
        return self.data[stream].decode()


def make_spec(
    argv: Sequence[str],
    cwd: Path | str,
    *,
    env: dict[str, str] | None = None,
    stdin: Literal["null", "pipe"] = "null",
    stop_timeout: float = 5.0,
) -> ProcessSpec:
    return ProcessSpec(
        task="t",
        argv=list(argv),
        env=dict(os.environ) if env is None else env,
        cwd=str(cwd),
        stdin=stdin,
        stop_timeout=stop_timeout,
    )


async def start(
    ex: LocalExecutor, argv: Sequence[str], cwd: Path | str, **kw: object
) -> tuple[LocalProcess, Sink]:
    sink = Sink()
    proc = await ex.spawn(make_spec(argv, cwd, **kw), sink.out, sink.on_eof)  # type: ignore[arg-type]
    return proc, sink


def run_to_end(argv: Sequence[str], cwd: Path | str, **kw: object) -> tuple[ExitStatus, Sink]:
    async def go() -> tuple[ExitStatus, Sink]:
        ex = LocalExecutor(guard=False)
        proc, sink = await start(ex, argv, cwd, **kw)
        return await proc.wait(), sink

    return run(go())


def spawn_error(argv: Sequence[str], cwd: Path | str, **kw: object) -> SpawnError:
    with pytest.raises(SpawnError) as info:
        run_to_end(argv, cwd, **kw)
    return info.value


# -- exit status ------------------------------------------------------------------------------


def test_exit_code_and_separate_streams_are_recorded_exactly(tmp_path: Path) -> None:
    status, sink = run_to_end(["sh", "-c", "echo out; echo err >&2; printf tail; exit 3"], tmp_path)
    assert status == ExitStatus(code=3, signal=None)
    assert sink.text("stdout") == "out\ntail"
    assert sink.text("stderr") == "err\n"
    assert sorted(sink.eof) == ["stderr", "stdout"]


def test_terminating_signal_is_recorded_as_signal_not_exit_code(tmp_path: Path) -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGUSR1)"
    status, _ = run_to_end([PY, "-c", code], tmp_path)
    assert status == ExitStatus(code=None, signal=signal.SIGUSR1)
    assert status.signal_name == "SIGUSR1"


def test_exit_code_above_127_is_not_mistaken_for_a_signal(tmp_path: Path) -> None:
    status, _ = run_to_end(["sh", "-c", "exit 143"], tmp_path)
    assert status == ExitStatus(code=143, signal=None)


# -- spawn errors -----------------------------------------------------------------------------


def test_missing_executable_raises_spawn_error_not_exit_127(tmp_path: Path) -> None:
    err = spawn_error(["devster-no-such-program"], tmp_path)
    assert str(err) == "not found: devster-no-such-program"
    assert err.errno == errno.ENOENT


def test_missing_executable_given_as_path_raises_not_found(tmp_path: Path) -> None:
    err = spawn_error(["./missing.sh"], tmp_path)
    assert str(err) == "not found: ./missing.sh"


def test_file_without_execute_permission_raises_permission_denied(tmp_path: Path) -> None:
    script = tmp_path / "tool"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    env = {"PATH": str(tmp_path)}
    err = spawn_error(["tool"], tmp_path, env=env)
    assert str(err) == "permission denied: tool"
    assert err.errno == errno.EACCES
    err = spawn_error(["./tool"], tmp_path)
    assert str(err) == "permission denied: ./tool"


def test_script_with_missing_interpreter_says_so(tmp_path: Path) -> None:
    script = tmp_path / "tool"
    script.write_text("#!/no/such/interpreter\n")
    script.chmod(0o755)
    err = spawn_error(["./tool"], tmp_path)
    assert str(err) == "not found: interpreter of ./tool"


def test_missing_working_directory_raises_spawn_error(tmp_path: Path) -> None:
    err = spawn_error(["true"], tmp_path / "nope")
    assert str(err) == f"working directory not found: {tmp_path / 'nope'}"


def test_working_directory_that_is_a_file_raises_spawn_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    err = spawn_error(["true"], tmp_path / "file")
    assert "working directory" in str(err)
    assert str(tmp_path / "file") in str(err)


def test_failed_spawns_leak_no_descriptors(tmp_path: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        spawn_error(["devster-no-such-program"], tmp_path)
    assert len(os.listdir("/proc/self/fd")) == before


# -- argv, env, cwd ---------------------------------------------------------------------------


def test_list_argv_is_looked_up_in_the_task_env_path_not_devsters(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "devster-test-tool"
    tool.write_text("#!/bin/sh\necho from-task-path\n")
    tool.chmod(0o755)
    assert str(bindir) not in os.environ.get("PATH", "")
    env = {"PATH": f"{bindir}:/usr/bin:/bin"}
    status, sink = run_to_end(["devster-test-tool"], tmp_path, env=env)
    assert status.code == 0
    assert sink.text() == "from-task-path\n"


def test_argv_and_env_reach_the_program_exactly(tmp_path: Path) -> None:
    args = ["a b", "", "'q'", '"d"', "$HOME", "*", "semi;colon", "ünï"]
    code = "import os, sys, json; print(json.dumps([sys.argv[1:], os.environ.get('X')]))"
    env = {"X": "va lue $Y", "PATH": "/usr/bin:/bin"}
    status, sink = run_to_end([PY, "-c", code, *args], tmp_path, env=env)
    assert status.code == 0, sink.text("stderr")
    assert json.loads(sink.text()) == [args, "va lue $Y"]


def test_environment_is_exactly_the_spec_env(tmp_path: Path) -> None:
    status, sink = run_to_end(["/usr/bin/env"], tmp_path, env={"ONLY": "1"})
    assert status.code == 0
    assert sink.text() == "ONLY=1\n"


def test_task_runs_in_its_working_directory(tmp_path: Path) -> None:
    status, sink = run_to_end(["pwd"], tmp_path)
    assert status.code == 0
    assert sink.text().strip() == str(tmp_path)


# -- a clean start ----------------------------------------------------------------------------


def test_task_is_leader_of_its_own_session_and_process_group(tmp_path: Path) -> None:
    code = "import os; print(os.getpid(), os.getpgid(0), os.getsid(0))"

    async def go() -> tuple[int | None, str]:
        ex = LocalExecutor(guard=False)
        proc, sink = await start(ex, [PY, "-c", code], tmp_path)
        await proc.wait()
        return proc.pid, sink.text()

    pid, text = run(go())
    assert text.split() == [str(pid)] * 3
    assert int(text.split()[2]) != os.getsid(0)


def test_only_fds_0_to_2_reach_the_task_even_inheritable_ones(tmp_path: Path) -> None:
    leak_r, leak_w = os.pipe()
    os.set_inheritable(leak_r, True)
    os.set_inheritable(leak_w, True)
    code = textwrap.dedent(
        """
        import os
        found = []
        for fd in range(1024):
            try:
                os.fstat(fd)
            except OSError:
                continue
            found.append(fd)
        print(found)
        """
    )
    try:
        status, sink = run_to_end([PY, "-c", code], tmp_path)
    finally:
        os.close(leak_r)
        os.close(leak_w)
    assert status.code == 0, sink.text("stderr")
    assert sink.text().strip() == "[0, 1, 2]"


def test_signal_mask_and_dispositions_reset_even_when_devster_ignores_and_blocks_them(
    tmp_path: Path,
) -> None:
    # Python itself ignores SIGPIPE and SIGXFSZ; add an ignored SIGHUP/SIGUSR1 (like
    # nohup) and a blocked SIGUSR2 in the thread that spawns.
    old_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    old_usr1 = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
    try:
        status, sink = run_to_end(["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"], tmp_path)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        signal.signal(signal.SIGUSR1, old_usr1)
        signal.signal(signal.SIGHUP, old_hup)
    assert status.code == 0
    fields = dict(line.split(":\t") for line in sink.text().splitlines())
    assert fields == {"SigBlk": "0000000000000000", "SigIgn": "0000000000000000"}


def test_stdin_is_dev_null_unless_piped(tmp_path: Path) -> None:
    status, sink = run_to_end(["sh", "-c", "readlink /proc/self/fd/0; cat; echo done"], tmp_path)
    assert status.code == 0
    assert sink.text() == "/dev/null\ndone\n"


TTY_PROBE = """
import asyncio, os, sys
from devster_tui.executors.base import ProcessSpec
from devster_tui.executors.local import LocalExecutor

result = sys.argv[1]
fd = os.open("/dev/tty", os.O_RDWR)  # we do have a controlling terminal ...
os.close(fd)
probe = "import os\\ntry:\\n os.open('/dev/tty', os.O_RDWR)\\n print('tty')\\n" \\
    "except OSError as e:\\n print('no tty', e.errno)"

async def main():
    out = []
    ex = LocalExecutor(guard=False)
    p = await ex.spawn(ProcessSpec(task="t", argv=[sys.executable, "-c", probe],
                                   env=dict(os.environ), cwd="/"),
                       lambda s, d: out.append(d), lambda s: None)
    await p.wait()
    with open(result, "wb") as f:
        f.write(b"".join(out))

asyncio.run(main())
"""


def test_task_has_no_controlling_terminal_even_when_devster_has_one(tmp_path: Path) -> None:
    import fcntl
    import termios

    master, slave = os.openpty()
    result = tmp_path / "result"

    def take_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        proc = subprocess.Popen(
            [PY, "-c", TTY_PROBE, str(result)],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=take_terminal,
        )
        os.close(slave)
        assert proc.wait(timeout=30) == 0
    finally:
        os.close(master)
    assert result.read_text().strip() == f"no tty {errno.ENXIO}"


# -- stdin ------------------------------------------------------------------------------------


def test_stdin_pipe_carries_bytes_and_end_of_file(tmp_path: Path) -> None:
    async def go() -> tuple[ExitStatus, Sink]:
        ex = LocalExecutor(guard=False)
        proc, sink = await start(ex, ["cat"], tmp_path, stdin="pipe")
        await proc.write_stdin(b"hello\n")
        await proc.write_stdin(b"\xff\x00raw")
        proc.close_stdin()
        return await proc.wait(), sink

    status, sink = run(go())
    assert status.code == 0
    assert bytes(sink.data["stdout"]) == b"hello\n\xff\x00raw"


def test_write_stdin_waits_while_the_pipe_is_full_instead_of_failing(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    code = textwrap.dedent(
        f"""
        import os, sys
        while not os.path.exists({str(gate)!r}):
            os.sched_yield()
        print(len(sys.stdin.buffer.read()))
        """
    )
    size = 4 * 1024 * 1024

    async def go() -> str:
        ex = LocalExecutor(guard=False)
        proc, sink = await start(ex, [PY, "-c", code], tmp_path, stdin="pipe")
        writer = asyncio.ensure_future(proc.write_stdin(b"x" * size))
        for _ in range(10):
            await asyncio.sleep(0)
        # 4 MiB cannot fit in a pipe while nobody reads: the write must be waiting.
        assert not writer.done()
        gate.write_text("")
        await writer
        proc.close_stdin()
        await proc.wait()
        return sink.text()

    assert run(go()).strip() == str(size)


def test_write_stdin_raises_broken_pipe_when_the_process_closed_stdin(tmp_path: Path) -> None:
    code = "import os, time; os.close(0); print('closed', flush=True); time.sleep(1000)"

    async def go() -> None:
        ex = LocalExecutor(guard=False)
        proc, sink = await start(ex, [PY, "-c", code], tmp_path, stdin="pipe")
        try:
            await async_wait_for(lambda: "closed" in sink.text(), what="stdin closed")
            with pytest.raises(BrokenPipeError):
                await proc.write_stdin(b"data\n")
        finally:
            await proc.stop(signal.SIGKILL, 0)

    run(go())


def test_write_stdin_after_close_stdin_raises_broken_pipe(tmp_path: Path) -> None:
    async def go() -> None:
        ex = LocalExecutor(guard=False)
        proc, _ = await start(ex, ["cat"], tmp_path, stdin="pipe")
        proc.close_stdin()
        with pytest.raises(BrokenPipeError):
            await proc.write_stdin(b"late")
        await proc.wait()

    run(go())


def test_close_stdin_wakes_a_writer_blocked_on_a_full_pipe(tmp_path: Path) -> None:
    async def go() -> None:
        ex = LocalExecutor(guard=False)
        proc, _ = await start(ex, ["sleep", "1000"], tmp_path, stdin="pipe")
        try:
            writer = asyncio.ensure_future(proc.write_stdin(b"x" * (4 * 1024 * 1024)))
            for _ in range(10):
                await asyncio.sleep(0)
            assert not writer.done()
            proc.close_stdin()
            with pytest.raises(BrokenPipeError):
                await writer
        finally:
            await proc.stop(signal.SIGKILL, 0)

    run(go())


# -- output -----------------------------------------------------------------------------------


def test_wait_after_normal_exit_keeps_every_byte_of_both_streams(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import os
        block = bytes(range(256)) * 4096
        for _ in range(8):
            os.write(1, block)
            os.write(2, block[::-1])
        os.write(1, b"partial line without newline")
        """
    )
    status, sink = run_to_end([PY, "-c", code], tmp_path)
    block = bytes(range(256)) * 4096
    assert status.code == 0
    assert bytes(sink.data["stdout"]) == block * 8 + b"partial line without newline"
    assert bytes(sink.data["stderr"]) == block[::-1] * 8
    assert sorted(sink.eof) == ["stderr", "stdout"]


def test_hundred_tasks_reach_running_and_stop_quickly(tmp_path: Path) -> None:
    async def go() -> tuple[float, float, list[tuple[int, int | None]]]:
        ex = LocalExecutor()
        ex.start_guard()
        env = dict(os.environ)
        t0 = time.perf_counter()
        procs = [(await start(ex, ["sleep", "1000"], tmp_path, env=env))[0] for _ in range(100)]
        spawned = time.perf_counter() - t0
        ids = [(p.pid, start_time(p.pid)) for p in procs if p.pid is not None]
        t1 = time.perf_counter()
        await asyncio.gather(*(p.stop(signal.SIGTERM, 5.0) for p in procs))
        stopped = time.perf_counter() - t1
        await ex.aclose()
        return spawned, stopped, ids

    spawned, stopped, ids = run(go())
    # Measured ~0.08 s to spawn and ~0.015 s to stop on 2 idle cores; CI bounds are looser.
    assert spawned < 1.5, spawned
    assert stopped < 1.0, stopped
    assert len(ids) == 100
    assert not [pid for pid, started in ids if process_alive(pid, started)]


def test_exit_is_seen_on_kernels_without_pidfd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pidfd(pid: int, flags: int = 0) -> int:
        raise OSError(errno.ENOSYS, "pidfd_open not supported")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    status, sink = run_to_end(["sh", "-c", "echo fallback; exit 5"], tmp_path)
    assert status == ExitStatus(code=5, signal=None)
    assert sink.text() == "fallback\n"


def test_local_executor_satisfies_the_executor_and_process_protocols(tmp_path: Path) -> None:
    # mypy --strict checks these assignments; at run time the process must also work
    # through the protocol type alone.
    async def go() -> ExitStatus:
        ex: Executor = LocalExecutor(guard=False)
        sink = Sink()
        proc: Process = await ex.spawn(make_spec(["true"], tmp_path), sink.out, sink.on_eof)
        return await proc.wait()

    assert run(go()) == ExitStatus(code=0, signal=None)
