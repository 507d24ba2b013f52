"""Control API tests with a real engine and real processes: permissions, lock, protocol, caps."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devster_tui.api.client import Address, ApiError, AsyncClient, Client, NoEngine
from devster_tui.api.codec import state_from_json
from devster_tui.api.paths import AlreadyRunning, acquire, socket_path
from devster_tui.api.server import ApiServer, Limits
from devster_tui.state.model import Status
from tests.test_api_support import PY, run, runtime_env, served, unix_client, wait_state

SLEEPER = """
tasks:
  web: {cmd: [PY, -c, "import time\\nwhile True: print('tick', flush=True); time.sleep(0.2)"]}
"""


@pytest.fixture(autouse=True)
def _private_runtime() -> object:
    with runtime_env() as path:
        yield path


def test_socket_is_0600_in_a_0700_dir_even_under_umask_000(tmp_path: Path) -> None:
    async def body() -> None:
        old = os.umask(0)
        try:
            async with served(tmp_path, SLEEPER) as (_engine, _server, lock):
                sock = os.stat(lock.socket)
                assert stat.S_ISSOCK(sock.st_mode)
                assert stat.S_IMODE(sock.st_mode) == 0o600
                assert stat.S_IMODE(os.stat(lock.directory).st_mode) == 0o700
                assert stat.S_IMODE(os.stat(lock.directory.parent).st_mode) == 0o700
                info = json.loads((lock.directory / "engine.json").read_text())
                assert info["pid"] == os.getpid()
                assert stat.S_IMODE(os.stat(lock.directory / "engine.json").st_mode) == 0o600
        finally:
            os.umask(old)

    run(body())


def test_wide_runtime_dir_is_narrowed_to_owner_only(tmp_path: Path) -> None:
    file = tmp_path / "devster.yaml"
    file.write_text("tasks: {}\n")
    directory = socket_path(file).parent
    directory.parent.mkdir(mode=0o777, exist_ok=True)
    os.chmod(directory.parent, 0o777)
    directory.mkdir(mode=0o777)
    os.chmod(directory, 0o777)
    lock = acquire(file)
    try:
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(directory.parent).st_mode) == 0o700
    finally:
        lock.release()


def test_second_lock_reports_already_running_with_pid(tmp_path: Path) -> None:
    file = tmp_path / "devster.yaml"
    file.write_text("tasks: {}\n")
    lock = acquire(file)
    try:
        with pytest.raises(AlreadyRunning) as info:
            acquire(file)
        assert info.value.pid == os.getpid()
        assert str(info.value) == f"already running (pid {os.getpid()})"
    finally:
        lock.release()
    acquire(file).release()


def test_stale_socket_of_a_killed_engine_is_replaced(tmp_path: Path) -> None:
    file = tmp_path / "devster.yaml"
    file.write_text(SLEEPER.replace("PY", PY))
    path = socket_path(file)
    client = Client(Address(socket=str(path)), timeout=2.0)
    with _up_process(file, tmp_path / "first.err") as first:
        _poll(lambda: _answers(client), "first engine answers")
        up = [sys.executable, "-m", "devster_tui", "up", "--no-tui", "-f", str(file)]
        second = subprocess.run(up, capture_output=True, text=True, timeout=30)
        assert second.returncode == 5  # ExitCode.ALREADY_RUNNING
        assert f"already running (pid {first.pid})" in second.stderr
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert path.exists(), "kill -9 leaves the socket behind"
        with pytest.raises(NoEngine):
            client.json("GET", "/v1/health")
    with _up_process(file, tmp_path / "third.err") as third:
        _poll(lambda: _answers(client, third.pid), "replacement engine answers")
        _poll(lambda: _web_running(client), "replacement engine runs its task")
        third.send_signal(signal.SIGTERM)
        assert third.wait(20) == 143
    assert not path.exists()


@contextlib.contextmanager
def _up_process(file: Path, stderr: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``devster up --no-tui`` on ``file``, stopped (SIGTERM, then SIGKILL) however the
    test ends: a failed assertion must not leave the engine, its guard and tasks behind."""
    up = [sys.executable, "-m", "devster_tui", "up", "--no-tui", "-f", str(file)]
    with stderr.open("wb") as err:
        proc = subprocess.Popen(up, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                # SIGKILL: the engine's guard then kills every task group and exits.
                proc.kill()
                proc.wait(10)


def _answers(client: Client, pid: int | None = None) -> bool:
    try:
        health = client.json("GET", "/v1/health")
    except (NoEngine, OSError):
        return False
    return pid is None or health["pid"] == pid


def _web_running(client: Client) -> bool:
    tasks = client.json("GET", "/v1/state")["state"]["tasks"]
    return bool(tasks) and bool(tasks[0]["status"] == "running")


def _poll(check: object, what: str, limit: float = 20.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.02)


def test_snapshot_decodes_to_the_engines_exact_state(tmp_path: Path) -> None:
    async def body() -> None:
        async with served(tmp_path, SLEEPER) as (engine, _server, lock):
            await wait_state(engine, lambda s: s.tasks["web"].status is Status.RUNNING)
            client = unix_client(lock)
            snapshot = await client.json("GET", "/v1/state")
            if snapshot["seq"] == engine.store.seq:
                assert state_from_json(snapshot["state"]) == engine.store.state
            events = (await client.request("GET", "/v1/events?since=0"))[1].splitlines()
            assert [json.loads(e)["seq"] for e in events] == list(range(1, len(events) + 1))

    run(body())


def test_commands_and_output_over_the_socket(tmp_path: Path) -> None:
    async def body() -> None:
        async with served(tmp_path, SLEEPER) as (engine, _server, lock):
            client = unix_client(lock)
            await wait_state(engine, lambda s: s.tasks["web"].status is Status.RUNNING)
            answer = await client.json(
                "GET", "/v1/tasks/web/output?view=stdout&start=0&limit=10&wait=10"
            )
            assert answer["lines"] and answer["lines"][0][2] == "tick"
            refused = await client.json("POST", "/v1/commands", {"action": "stop", "tasks": ["x"]})
            assert refused == {
                "ok": False,
                "message": "unknown task: x; known tasks: web",
                "needs_confirmation": False,
                "unknown": ["x"],
            }
            stopped = await client.json(
                "POST", "/v1/commands", {"action": "stop", "tasks": ["web"]}
            )
            assert stopped["ok"]
            assert engine.store.state.tasks["web"].status is Status.STOPPED
            with pytest.raises(ApiError) as bad:
                await client.json("POST", "/v1/commands", {"action": "explode"})
            assert bad.value.status == 400
            with pytest.raises(ApiError) as missing:
                await client.json("GET", "/v1/tasks/nope/output")
            assert missing.value.status == 404
            with pytest.raises(ApiError) as method:
                await client.json("GET", "/v1/commands")
            assert method.value.status == 405

    run(body())


def test_events_follow_streams_new_events(tmp_path: Path) -> None:
    async def body() -> None:
        async with served(tmp_path, SLEEPER) as (engine, _server, lock):
            client = unix_client(lock)
            await wait_state(engine, lambda s: s.tasks["web"].status is Status.RUNNING)
            seq = engine.store.seq
            stream = client.stream(f"/v1/events?since={seq}&follow=1")
            restart = asyncio.create_task(
                client.json("POST", "/v1/commands", {"action": "restart", "tasks": ["web"]})
            )
            seen: list[str] = []
            async for line in stream:
                event = json.loads(line)
                assert event["seq"] > seq
                seen.append(event["type"])
                if event["type"] == "task.spawned":
                    break
            await restart
            assert seen[:1] == ["command"] and "task.exited" in seen

    run(body())


# ---------------------------------------------------------------- TCP listener


async def _raw(port: int, data: bytes, limit: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), limit)
    finally:
        writer.close()


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_tcp_requires_the_token_and_refuses_foreign_host_and_origin(tmp_path: Path) -> None:
    async def body() -> None:
        async with served(tmp_path, SLEEPER, tcp=True, token="s3cret") as (_e, server, _l):
            port = server.tcp_port
            assert port is not None
            host = f"127.0.0.1:{port}"

            def get(headers: str) -> bytes:
                return f"GET /v1/health HTTP/1.1\r\n{headers}Connection: close\r\n\r\n".encode()

            no_token = await _raw(port, get(f"Host: {host}\r\n"))
            assert _status(no_token) == 401 and b"WWW-Authenticate: Bearer" in no_token
            wrong = await _raw(port, get(f"Host: {host}\r\nAuthorization: Bearer s3cres\r\n"))
            assert _status(wrong) == 401
            ok = await _raw(port, get(f"Host: {host}\r\nAuthorization: Bearer s3cret\r\n"))
            assert _status(ok) == 200
            rebinding = await _raw(
                port, get(f"Host: evil.example:{port}\r\nAuthorization: Bearer s3cret\r\n")
            )
            assert _status(rebinding) == 403
            csrf = await _raw(
                port,
                get(
                    f"Host: {host}\r\nOrigin: http://evil.example\r\n"
                    "Authorization: Bearer s3cret\r\n"
                ),
            )
            assert _status(csrf) == 403
            client = AsyncClient(Address(url=f"http://{host}", token="s3cret"))
            assert (await client.json("GET", "/v1/health"))["ok"]
            assert server.socket_path is not None

    run(body())


def test_tcp_listener_refuses_to_open_without_a_token(tmp_path: Path) -> None:
    async def body() -> None:
        async with served(tmp_path, SLEEPER, start=False) as (engine, _server, _lock):
            with pytest.raises(ValueError, match="token"):
                await ApiServer(engine).listen_tcp("127.0.0.1", 0)

    run(body())


def _limits(server: ApiServer) -> None:
    server.limits = Limits(max_header=2048, max_body=4096, max_connections=4, request_timeout=0.5)


def test_huge_body_is_refused_before_it_is_read(tmp_path: Path) -> None:
    async def body() -> None:
        async with served(tmp_path, SLEEPER, server_hook=_limits) as (_e, _s, lock):
            reader, writer = await asyncio.open_unix_connection(str(lock.socket))
            writer.write(
                b"POST /v1/commands HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"
            )
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert _status(answer) == 413
            reader, writer = await asyncio.open_unix_connection(str(lock.socket))
            writer.write(b"GET /v1/health HTTP/1.1\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n")
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert _status(answer) == 431

    run(body())


def test_slow_clients_and_connection_floods_do_not_starve_others(tmp_path: Path) -> None:
    async def body() -> None:
        async with served(tmp_path, SLEEPER, server_hook=_limits) as (_e, _s, lock):
            path = str(lock.socket)
            slow = [await asyncio.open_unix_connection(path) for _ in range(4)]
            for _reader, writer in slow:
                writer.write(b"GET /v1/health HTTP/1.1\r\nHo")
                await writer.drain()
            # The cap is reached: a fifth connection is told so at once.
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert _status(answer) == 503
            # Slow clients are cut off after the request timeout, freeing their slots.
            for reader, writer in slow:
                answer = await asyncio.wait_for(reader.read(), 5)
                assert _status(answer) == 408
                writer.close()
            client = unix_client(lock)
            deadline = time.monotonic() + 5
            while True:
                try:
                    assert (await client.json("GET", "/v1/health"))["ok"]
                    break
                except ApiError as exc:
                    assert exc.status == 503 and time.monotonic() < deadline
                    await asyncio.sleep(0.01)

    run(body())


# ---------------------------------------------------------------- serialisation


def test_50_concurrent_restarts_and_10_stops_never_make_two_live_instances(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with served(tmp_path, SLEEPER) as (engine, _server, lock):
            await wait_state(engine, lambda s: s.tasks["web"].status is Status.RUNNING)
            client = unix_client(lock)

            async def send(action: str) -> object:
                return await client.json(
                    "POST", "/v1/commands", {"action": action, "tasks": ["web"]}
                )

            actions = ["restart"] * 50 + ["stop"] * 10
            import random

            random.Random(7).shuffle(actions)
            results = await asyncio.gather(*(send(a) for a in actions))
            assert len(results) == 60
            events = [e for e in engine.store.events_since(0) if e.task == "web"]
            live = 0
            pids: list[int] = []
            for event in events:
                if event.type == "task.spawned":
                    live += 1
                    pids.append(int(event.data["pid"]))
                    assert live == 1, "two live instances"
                elif event.type == "task.exited":
                    live -= 1
                    assert live == 0
            spawns = [
                e
                for e in events
                if e.type in ("task.stopping", "task.exited", "task.starting", "task.spawned")
            ]
            for before, after in itertools.pairwise(spawns):
                if after.type == "task.starting" and before.type != "task.starting":
                    assert before.type == "task.exited", f"start after {before.type}"
            for pid in pids[:-1] if live else pids:
                with pytest.raises(ProcessLookupError):
                    os.kill(pid, 0)

    run(body(), 90)


def test_unix_socket_has_no_token_and_answers_health(tmp_path: Path) -> None:
    async def body() -> None:
        async with served(tmp_path, SLEEPER, start=False) as (_e, _server, lock):
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(str(lock.socket))
            sock.sendall(b"GET /v1/health HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := await asyncio.to_thread(sock.recv, 4096):
                data += chunk
            sock.close()
            assert _status(data) == 200
            assert json.loads(data.split(b"\r\n\r\n", 1)[1])["pid"] == os.getpid()

    run(body())
