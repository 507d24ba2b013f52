"""Layer follow-ups against real components: a missing command is a spawn error through every
chain, a follow task survives a container replaced behind ssh without repeating lines, the
resume filter spans runs, a docker build task is the image build job."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devster_tui.config.loader import load_project
from devster_tui.config.schema import DockerLayer, Layer, SshLayer
from devster_tui.engine.supervisor import Engine
from devster_tui.executors.base import ExitStatus, ProcessSpec, SpawnError
from devster_tui.executors.chain import (
    FramedProcess,
    env_frames,
    handshake_error,
    wrap_argv,
)
from devster_tui.executors.docker import DockerExecutor
from devster_tui.executors.layered import ResumingExecutor, build_executor
from devster_tui.executors.local import LocalExecutor
from devster_tui.executors.ssh import SshExecutor, SshPool
from devster_tui.state.commands import Command
from devster_tui.state.model import Status, TaskState
from devster_tui.state.output import OutputStore
from tests.helpers.components import (
    LayerSink,
    require_binary,
    require_docker,
    require_sshd,
    run_container,
    scratch_container,
)
from tests.helpers.sshd import Sshd, keygen, start_sshd

SHELLS = [["sh"]] + ([["busybox", "sh"]] if shutil.which("busybox") else [])


@dataclass
class Server:
    sshd: Sshd
    client_key: Path
    known_hosts: Path
    root: Path

    def layer(self, **extra: Any) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": self.sshd.port,
            "user": "root",
            "identity": str(self.client_key),
            "known_hosts": str(self.known_hosts),
            "agent": False,
            "use_ssh_config": False,
            "keepalive": "1s",
            **extra,
        }


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    require_sshd()
    key = keygen(tmp_path / "client_key")
    sshd = start_sshd(tmp_path / "sshd", key)
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line)
    yield Server(sshd, key, known, tmp_path)
    sshd.kill_all()


@pytest.fixture
def container() -> Iterator[str]:
    with scratch_container("devster-fu") as name:
        yield name


Sink = LayerSink


async def until(predicate: Callable[[], bool], limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "condition not met within the deadline"
        await asyncio.sleep(0.02)


# -- 4. a missing command is a spawn error, not exit 127 ------------------------------------


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_wrapper_reports_a_missing_command_instead_of_running_it(
    shell: list[str], tmp_path: Path
) -> None:
    def report(argv: list[str], cwd: str = "") -> tuple[bytes, int]:
        spec = ProcessSpec(task="t", argv=argv, env={}, cwd="/")
        full = wrap_argv(spec, cwd=cwd)
        full[0:1] = shell
        proc = subprocess.Popen(full, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(env_frames({}, handshake=True))
        proc.stdin.flush()  # the channel stays open while the task runs
        out = proc.stdout.read()
        code = proc.wait(20)
        proc.stdin.close()
        return out, code

    assert report(["devster-no-such-command"]) == (b"\x1edevster N\n", 127)
    plain = tmp_path / "not-executable"
    plain.write_text("echo no\n")
    plain.chmod(0o644)
    assert report([str(plain)]) == (b"\x1edevster P\n", 126)
    assert report(["true"], cwd="/no/such/dir") == (b"\x1edevster D\n", 126)
    assert report(["echo", "hi"]) == (b"\x1edevster O\nhi\n", 0)


def test_start_report_is_taken_off_stdout_even_split_and_through_a_tty() -> None:
    async def main() -> None:
        for pieces in (
            [b"\x1edevster O\nout\n"],
            [b"\x1ede", b"vster O", b"\r\nout\n"],
            [b"plain output first\n"],
        ):
            sink = Sink()
            proc = FramedProcess(
                ProcessSpec(task="t", argv=["x"], env={}, cwd="/"),
                _NullChannel(),
                sink.out,
                sink.eof,
                handshake=True,
            )
            for piece in pieces:
                proc.feed("stdout", piece)
            report = await proc.handshake(1.0)
            if pieces[0].startswith(b"plain"):
                assert report is None and bytes(sink.data["stdout"]) == pieces[0]
            else:
                assert report == "O" and bytes(sink.data["stdout"]) == b"out\n"

    asyncio.run(main())


class _NullChannel:
    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass

    def write_eof(self) -> None:
        pass

    def abort(self) -> None:
        pass


def test_handshake_errors_read_like_the_local_executor() -> None:
    spec = ProcessSpec(task="t", argv=["nope"], env={}, cwd="/srv")
    assert str(handshake_error("N", spec)) == "not found: nope"
    assert str(handshake_error("P", spec)) == "permission denied: nope"
    assert str(handshake_error("D", spec)) == "working directory not found: /srv"
    assert handshake_error("O", spec) is None and handshake_error(None, spec) is None


@pytest.mark.docker
def test_missing_command_in_a_container_is_a_spawn_error_not_exit_127(container: str) -> None:
    async def main() -> str:
        executor = DockerExecutor(DockerLayer(container=container))
        try:
            await executor.spawn(
                ProcessSpec(task="t", argv=["devster-nope", "x"], env={}, cwd="/"),
                Sink().out,
                Sink().eof,
            )
        except SpawnError as exc:
            return str(exc)
        raise AssertionError("a missing command started")

    assert asyncio.run(main()) == "not found: devster-nope"


@pytest.mark.ssh
@pytest.mark.docker
def test_missing_command_through_ssh_docker_exec_is_a_spawn_failed_event(
    server: Server, container: str
) -> None:
    """Through the engine: ``task.spawn_failed`` with ``not found: NAME``, like a local task."""
    file = server.root / "devster.yaml"
    file.write_text(
        textwrap.dedent(
            f"""
            version: 1
            environments:
              prod:
                layers:
                  - ssh: {json.dumps(server.layer())}
                  - docker: {{container: {container}}}
            tasks:
              gone: {{cmd: [devster-missing-tool, --flag], kind: job, environment: prod}}
              fine: {{cmd: [echo, ok], kind: job, environment: prod}}
            """
        )
    )

    async def main() -> tuple[Any, list[Any]]:
        engine = Engine(load_project(file), state_dir=server.root / "state")
        events: list[Any] = []
        engine.store.subscribe(lambda event, _state: events.append(event))
        await engine.start()
        await asyncio.wait_for(engine.wait_finished(), 60)
        await engine.shutdown()
        return engine.store.state, events

    state, events = asyncio.run(main())
    failed = [e for e in events if e.type == "task.spawn_failed" and e.task == "gone"]
    assert failed and failed[0].data["error"] == "not found: devster-missing-tool"
    assert state.tasks["gone"].status is Status.FAILED
    assert state.tasks["gone"].last_exit is None  # no fake exit status
    assert state.tasks["fine"].status is Status.SUCCEEDED
    assert list(state.tasks["fine"].last_lines) == ["ok"]


# -- 3. a follow task survives a replaced container behind ssh -------------------------------


@pytest.mark.ssh
@pytest.mark.docker
@pytest.mark.slow
def test_tail_follows_a_container_replaced_behind_ssh_without_repeating_lines(
    server: Server, tmp_path: Path
) -> None:
    """``docker rm -f`` and a new container of the same name under a running ``tail -F``
    through ssh -> docker exec: the same run goes on (no restart), the new container is found
    by name, and the lines the new tail prints again are not repeated."""
    require_docker()
    logs = tmp_path / "logs"
    logs.mkdir()
    logfile = logs / "app.log"
    logfile.write_text("".join(f"old {i}\n" for i in range(5)))
    name = f"devster-fu-{uuid.uuid4().hex[:10]}"
    mount = ("-v", f"{logs}:/logs")
    run_container(name, *mount)
    file = tmp_path / "devster.yaml"
    file.write_text(
        textwrap.dedent(
            f"""
            version: 1
            environments:
              prod:
                layers:
                  - ssh: {json.dumps(server.layer())}
                  - docker: {{container: {name}}}
            tasks:
              tail:
                cmd: [tail, -n, "3", -F, /logs/app.log]
                environment: prod
                restart: {{policy: "no"}}
            """
        )
    )

    def lines(engine: Engine) -> list[str]:
        return [line.text for line in engine.output.tail("tail", "stdout", 100)]

    async def main() -> tuple[list[str], int, Status, list[Any]]:
        engine = Engine(load_project(file), state_dir=tmp_path / "state")
        events: list[Any] = []
        engine.store.subscribe(lambda event, _state: events.append(event))
        await engine.start()
        try:
            await until(lambda: lines(engine) == ["old 2", "old 3", "old 4"], 30)
            await asyncio.to_thread(
                subprocess.run, ["docker", "rm", "-f", name], capture_output=True, timeout=60
            )
            with logfile.open("a") as f:
                f.write("new 1\n")
            await asyncio.to_thread(run_container, name, *mount)
            await until(lambda: "new 1" in lines(engine), 30)
            with logfile.open("a") as f:
                f.write("new 2\n")
            await until(lambda: "new 2" in lines(engine), 30)
            task = engine.store.state.tasks["tail"]
            return lines(engine), task.run, task.status, events
        finally:
            await engine.shutdown()

    try:
        got, run, status, events = asyncio.run(main())
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
    assert got == ["old 2", "old 3", "old 4", "new 1", "new 2"]
    assert run == 1 and status is Status.RUNNING  # survived: no exit, no second run
    links = [e.data.get("state") for e in events if e.type == "task.link"]
    assert "disconnected" in links and "connected" in links


@pytest.mark.ssh
def test_follow_lines_are_not_repeated_by_the_next_run_after_an_exit_on_its_own(
    server: Server, tmp_path: Path
) -> None:
    """The resume filter spans runs: a follow task that ended by itself and is started again
    does not repeat its last lines; a run after a stop starts clean."""
    logfile = tmp_path / "app.log"
    logfile.write_text("".join(f"l{i}\n" for i in range(5)))
    argv = ["sh", "-c", 'tail -n 3 "$0"', str(logfile)]

    async def main() -> tuple[bytes, bytes, bytes]:
        pool = SshPool()
        executor = ResumingExecutor(SshExecutor([SshLayer(**server.layer())], pool))
        spec = ProcessSpec(task="follow", argv=argv, env={}, cwd="/")
        first, second, third = Sink(), Sink(), Sink()
        proc = await executor.spawn(spec, first.out, first.eof)
        assert await asyncio.wait_for(proc.wait(), 30) == ExitStatus(0, None)
        with logfile.open("a") as f:
            f.write("l5\n")
        proc = await executor.spawn(spec, second.out, second.eof)  # the policy's next run
        await asyncio.wait_for(proc.wait(), 30)
        proc = await executor.spawn(
            ProcessSpec(task="follow", argv=["sh", "-c", "sleep 30"], env={}, cwd="/"),
            Sink().out,
            Sink().eof,
        )
        await proc.stop(15, 2.0)  # stopped on request
        proc = await executor.spawn(spec, third.out, third.eof)
        await asyncio.wait_for(proc.wait(), 30)
        await pool.aclose()
        return (
            bytes(first.data["stdout"]),
            bytes(second.data["stdout"]),
            bytes(third.data["stdout"]),
        )

    first, second, third = asyncio.run(main())
    assert first == b"l2\nl3\nl4\n"
    assert second == b"l5\n"
    assert third == b"l3\nl4\nl5\n"


@pytest.mark.ssh
@pytest.mark.docker
def test_exec_behind_ssh_into_a_missing_container_waits_and_starts_when_it_runs(
    server: Server,
) -> None:
    """The remote exec guard reports a missing container (not a task exit); a follow service
    keeps retrying and starts once the container runs."""
    require_docker()
    name = f"devster-fu-{uuid.uuid4().hex[:10]}"

    async def main() -> Sink:
        sink = Sink()
        pool = SshPool()
        layers = [Layer(ssh=SshLayer(**server.layer())), Layer(docker=DockerLayer(container=name))]
        inner = build_executor(
            layers, local=LocalExecutor(guard=False), pool=pool, project="p", root=server.root
        )
        executor = ResumingExecutor(inner, notice=sink.notice, initial=0.2, maximum=1.0)
        proc = await executor.spawn(
            ProcessSpec(task="t", argv=["sh", "-c", "echo up; exec sleep 300"], env={}, cwd="/"),
            sink.out,
            sink.eof,
        )
        await until(lambda: any("container missing" in d for _t, _s, d in sink.notices))
        await asyncio.to_thread(run_container, name)
        await until(lambda: bytes(sink.data["stdout"]) == b"up\n", 30)
        await proc.stop(15, 2.0)
        await pool.aclose()
        return sink

    try:
        sink = asyncio.run(main())
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
    assert b"is not running" in sink.data["stderr"]


# -- 5. a docker build task is the image build job ------------------------------------------


def build_context(root: Path, version: str) -> Path:
    """A FROM scratch context with busybox (no registry is needed) and a version file."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    context = root / "image"
    context.mkdir(exist_ok=True)
    shutil.copy(busybox, context / "busybox")
    (context / "version.txt").write_text(version + "\n")
    (context / "Dockerfile").write_text(
        textwrap.dedent(
            """\
            FROM scratch
            COPY busybox /bin/busybox
            RUN ["/bin/busybox", "--install", "-s", "/bin"]
            ENV PATH=/bin
            COPY version.txt /version.txt
            """
        )
    )
    return context


@pytest.mark.docker
@pytest.mark.slow
def test_build_task_without_cmd_builds_the_image_and_a_rebuild_restarts_dependents(
    tmp_path: Path,
) -> None:
    """A task whose environment is a docker build layer and that has no cmd is the build job:
    its log is the build's output, success is the job's result, the image runs its dependent,
    and building again restarts the dependent with the new image."""
    require_docker()
    require_binary("busybox", "/bin/busybox")
    tag = f"devster-fu-build:{uuid.uuid4().hex[:10]}"
    build_context(tmp_path, "v1")
    file = tmp_path / "devster.yaml"
    file.write_text(
        textwrap.dedent(
            f"""
            version: 1
            environments:
              builder: {{layers: [{{docker: {{build: {{context: image, tag: "{tag}"}}}}}}]}}
              app-image: {{layers: [{{docker: {{image: "{tag}"}}}}]}}
            tasks:
              image: {{kind: job, environment: builder}}
              app:
                cmd: [sh, -c, "cat /version.txt; exec sleep 300"]
                environment: app-image
                depends_on: {{image: {{condition: succeeded, on_restart: restart}}}}
            """
        )
    )

    async def main() -> tuple[list[str], list[str], int, Status]:
        engine = Engine(load_project(file), state_dir=tmp_path / "state")

        def app_output() -> list[str]:
            return [line.text for line in engine.output.tail("app", "stdout", 20)]

        await engine.start()
        try:
            await until(lambda: "v1" in app_output(), 90)
            state = engine.store.state
            assert state.tasks["image"].status is Status.SUCCEEDED
            build_log = [line.text for line in engine.output.tail("image", "stdout", 200)]
            (tmp_path / "image" / "version.txt").write_text("v2\n")
            result = await engine.execute(Command(action="restart", tasks=("image",)))
            assert result.ok, result.message
            await until(lambda: "v2" in app_output(), 90)
            state = engine.store.state
            return build_log, app_output(), state.tasks["app"].run, state.tasks["image"].status
        finally:
            await engine.shutdown()

    try:
        build_log, app_lines, app_runs, image_status = asyncio.run(main())
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=60)
    assert any("COPY version.txt" in line for line in build_log), build_log
    assert any(line.startswith("Successfully built") for line in build_log), build_log
    assert image_status is Status.SUCCEEDED
    assert app_runs == 2 and [x for x in app_lines if x in ("v1", "v2")] == ["v1", "v2"]


@pytest.mark.docker
def test_failing_build_task_exits_1_with_the_build_error_in_its_log(tmp_path: Path) -> None:
    require_docker()
    tag = f"devster-fu-build:{uuid.uuid4().hex[:10]}"
    context = tmp_path / "image"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY missing-file /x\n")
    file = tmp_path / "devster.yaml"
    file.write_text(
        textwrap.dedent(
            f"""
            version: 1
            environments:
              builder: {{layers: [{{docker: {{build: {{context: image, tag: "{tag}"}}}}}}]}}
            tasks:
              image: {{kind: job, environment: builder}}
            """
        )
    )

    async def main() -> tuple[Status, list[str], int]:
        engine = Engine(load_project(file), state_dir=tmp_path / "state")
        await engine.start()
        await asyncio.wait_for(engine.wait_finished(), 120)
        await engine.shutdown()
        task = engine.store.state.tasks["image"]
        code = task.last_exit.code if task.last_exit is not None else None
        return (
            task.status,
            [line.text for line in engine.output.tail("image", "stderr", 20)],
            -1 if code is None else code,
        )

    status, errors, code = asyncio.run(main())
    assert status is Status.FAILED and code == 1  # a failed job looks failed
    assert any("missing-file" in line for line in errors), errors


# -- 2. the cockpit groups fan-out instances under their task --------------------------------


def _fanout_scene() -> Any:
    from tests.test_tui_scenes import Scene, _Recorder

    r = _Recorder("fleet")
    r.define("db")
    r.define("access@web-1", host="web-1", depends_on={"db": "started"})
    r.define("access@web-2", host="web-2", depends_on={"db": "started"})
    r.define("report", depends_on={"access@web-1": "started", "access@web-2": "started"})
    for pid, name in enumerate(["db", "access@web-1", "access@web-2"], start=100):
        r.run(name, pid)
    r.exit("access@web-2", 1, 1)
    output = OutputStore(None)
    for name, host in (("access@web-1", "web-1"), ("access@web-2", "web-2")):
        output.append(name, "stdout", f"GET /a from {host}\nGET /b from {host}\n".encode(), 1)
    output.append("access@web-2", "stderr", b"tail: lost\n", 1)
    return Scene(r.store, output, r.clock.monotonic() + 5)


def test_fanout_instances_are_grouped_under_their_task_with_host_prefixed_output() -> None:
    from devster_tui.tui.app import CockpitApp
    from tests.test_tui_scenes import RecordingController

    scene = _fanout_scene()
    controller = RecordingController()
    app = CockpitApp(scene.store, scene.output, controller, clock=scene.clock, theme_dirs=[])

    async def pane_text() -> list[str]:
        log = app.log_pane
        lines = app.log_output.read(log.task_name or "", log.view, 0, 100)
        return [line.data.decode() for line in lines]

    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await _until(pilot, lambda: app.tasks.names != [])
            assert app.tasks.names == ["db", "access", "access@web-1", "access@web-2", "report"]
            width = app.tasks.size.width
            group_row = app.tasks.row_text(
                app.tasks.row_state("access") or TaskState(name="?"), "├─", width
            ).plain
            assert "access ×2" in group_row and "exited" in group_row  # not running wins
            instance = scene.store.state.tasks["access@web-1"]
            assert "@web-1" in app.tasks.row_text(instance, "│ ├─", width).plain
            app.tasks.select("access")
            await _until(pilot, lambda: app.log_pane.task_name == "access")
            merged = await pane_text()
            assert [line for line in merged if "GET" in line or "lost" in line] == [
                "web-1 | GET /a from web-1",
                "web-1 | GET /b from web-1",
                "web-2 | GET /a from web-2",
                "web-2 | GET /b from web-2",
                "web-2 | tail: lost",
            ]
            assert "exited" in str(app.log_pane.border_title)
            scene.output.append("access@web-1", "stdout", b"GET /c from web-1\n", 1)
            await _until(pilot, lambda: app.log_pane.line_count == len(merged) + 1)
            assert (await pane_text())[-1] == "web-1 | GET /c from web-1"
            await pilot.press("r")  # actions need one instance: nothing is sent for a group
            await pilot.pause()
            assert controller.commands == []
            app.tasks.select("access@web-2")
            await _until(pilot, lambda: app.log_pane.task_name == "access@web-2")
            await pilot.press("r")
            await _until(pilot, lambda: len(controller.commands) == 1)
            assert controller.commands[0].tasks == ("access@web-2",)
            app.action_toggle_tree()
            await pilot.pause()
            assert app.tasks.names == ["db", "access", "access@web-1", "access@web-2", "report"]

    asyncio.run(main())


async def _until(pilot: Any, cond: Callable[[], object], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await pilot.pause(0.01)
