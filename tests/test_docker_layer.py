"""The Docker layer against a real Docker engine and the local busybox image."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devster_tui.config.schema import DockerLayer
from devster_tui.executors.base import ExitStatus, ProcessSpec, Stream
from devster_tui.executors.docker import DockerExecutor
from tests.helpers.components import IMAGE, require_docker, scratch_container

pytestmark = pytest.mark.docker

PRINTF = ["printf", "[%s]\n", "a b", "$(touch /tmp/pwned)", "'\"`;|&", "*", "é", ""]
EXPECTED = b"[a b]\n[$(touch /tmp/pwned)]\n['\"`;|&]\n[*]\n[\xc3\xa9]\n[]\n"


@pytest.fixture
def container() -> Iterator[str]:
    with scratch_container("devster-test") as name:
        yield name


class Sink:
    def __init__(self) -> None:
        self.chunks: dict[Stream, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self.eofs: list[Stream] = []
        self.notices: list[tuple[str, str, str]] = []

    def out(self, stream: Stream, data: bytes) -> None:
        self.chunks[stream] += data

    def eof(self, stream: Stream) -> None:
        self.eofs.append(stream)

    def notice(self, task: str, state: str, detail: str) -> None:
        self.notices.append((task, state, detail))


def top(name: str) -> str:
    return subprocess.run(
        ["docker", "top", name], capture_output=True, text=True, timeout=30
    ).stdout


def test_exec_argv_and_env_arrive_exactly_and_no_file_is_created(container: str) -> None:
    async def main() -> ExitStatus:
        sink = Sink()
        executor = DockerExecutor(DockerLayer(container=container))
        proc = await executor.spawn(
            ProcessSpec(task="t", argv=PRINTF, env={}, cwd="/"), sink.out, sink.eof
        )
        status = await asyncio.wait_for(proc.wait(), 30)
        assert bytes(sink.chunks["stdout"]) == EXPECTED
        env = Sink()
        proc = await executor.spawn(
            ProcessSpec(
                task="t",
                argv=["sh", "-c", 'printf "%s" "$A"; echo oops >&2'],
                env={"A": "x\n$y `z`\n"},
                cwd="/",
            ),
            env.out,
            env.eof,
        )
        await asyncio.wait_for(proc.wait(), 30)
        assert bytes(env.chunks["stdout"]) == b"x\n$y `z`\n"
        assert bytes(env.chunks["stderr"]) == b"oops\n"  # demultiplexed, no frame headers
        return status

    assert asyncio.run(main()) == ExitStatus(0, None)
    probe = subprocess.run(
        ["docker", "exec", container, "ls", "/tmp/pwned"], capture_output=True, timeout=30
    )
    assert probe.returncode != 0


def test_stop_of_an_exec_leaves_no_process_in_the_container(container: str) -> None:
    async def main() -> ExitStatus:
        sink = Sink()
        executor = DockerExecutor(DockerLayer(container=container))
        proc = await executor.spawn(
            ProcessSpec(
                task="t", argv=["sh", "-c", "sleep 301 & sleep 302; wait"], env={}, cwd="/"
            ),
            sink.out,
            sink.eof,
        )
        deadline = time.monotonic() + 10
        while "sleep 302" not in await asyncio.to_thread(top, container):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        return await asyncio.wait_for(proc.stop(15, 2.0), 30)

    status = asyncio.run(main())
    assert status.signal == 15
    deadline = time.monotonic() + 10
    while "sleep 30" in top(container):
        assert time.monotonic() < deadline, top(container)
        time.sleep(0.05)


def test_container_removed_underneath_exits_with_the_reason_within_2s(container: str) -> None:
    async def main() -> tuple[ExitStatus, float]:
        sink = Sink()
        executor = DockerExecutor(DockerLayer(container=container))
        proc = await executor.spawn(
            ProcessSpec(task="t", argv=["sleep", "1000"], env={}, cwd="/"), sink.out, sink.eof
        )
        started = time.monotonic()
        await asyncio.to_thread(
            subprocess.run, ["docker", "rm", "-f", container], capture_output=True, timeout=60
        )
        removed = time.monotonic()
        status = await asyncio.wait_for(proc.wait(), 10)
        del started
        return status, time.monotonic() - removed

    status, took = asyncio.run(main())
    assert status.reason == "container removed"
    assert took < 2.0


def test_daemon_down_is_a_waiting_state_and_work_resumes_when_it_is_back(
    container: str, tmp_path: Path
) -> None:
    sock = tmp_path / "docker.sock"

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_unix_connection("/var/run/docker.sock")
        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

    async def main() -> tuple[ExitStatus, Sink]:
        sink = Sink()
        executor = DockerExecutor(
            DockerLayer(container=container, host=f"unix://{sock}"), notice=sink.notice
        )
        spawn = asyncio.create_task(
            executor.spawn(
                ProcessSpec(task="t", argv=["echo", "back"], env={}, cwd="/"),
                sink.out,
                sink.eof,
            )
        )
        deadline = time.monotonic() + 10
        while not sink.notices:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert not spawn.done()
        server = await asyncio.start_unix_server(relay, path=str(sock))  # the daemon is back
        async with server:
            proc = await asyncio.wait_for(spawn, 30)
            status = await asyncio.wait_for(proc.wait(), 30)
        return status, sink

    status, sink = asyncio.run(main())
    assert status == ExitStatus(0, None)
    assert bytes(sink.chunks["stdout"]) == b"back\n"
    task, state, detail = sink.notices[0]
    assert (task, state) == ("t", "waiting")
    assert "docker daemon unavailable" in detail


def test_run_from_image_removes_the_container_after_the_task() -> None:
    require_docker()
    name = f"devster-run-{uuid.uuid4().hex[:10]}"

    async def main() -> tuple[ExitStatus, bytes]:
        sink = Sink()
        executor = DockerExecutor(DockerLayer(image=IMAGE, name=name, env={"X": "1"}))
        proc = await executor.spawn(
            ProcessSpec(task="t", argv=["sh", "-c", 'echo "x=$X y=$Y"'], env={"Y": "a b"}, cwd="/"),
            sink.out,
            sink.eof,
        )
        status = await asyncio.wait_for(proc.wait(), 60)
        return status, bytes(sink.chunks["stdout"])

    status, out = asyncio.run(main())
    assert status == ExitStatus(0, None)
    assert out == b"x=1 y=a b\n"
    gone = subprocess.run(["docker", "inspect", name], capture_output=True, timeout=30)
    assert gone.returncode != 0
