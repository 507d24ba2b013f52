"""Secrets: references and where they may be written, each source and each error, redaction
of output chunks (values split across reads) and of event data, and the values reaching
processes only through their environment."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devster_tui.config.errors import ConfigErrors
from devster_tui.config.loader import LoadedProject, load_project
from devster_tui.config.secrets import SecretValues, allowed_path
from devster_tui.engine.secrets import (
    prompt_errors,
    resolve_secrets,
    with_layer_secrets,
    with_secrets,
)
from devster_tui.engine.supervisor import Engine
from devster_tui.executors.base import EofSink, OutputSink, Process, ProcessSpec
from devster_tui.executors.local import LocalExecutor
from devster_tui.state.events import T
from devster_tui.state.output import OutputStore
from devster_tui.state.redact import Redactor
from devster_tui.state.store import Store

PY = sys.executable
VALUE = "Vx9-q7Lz-distinct"


def _write(tmp_path: Path, text: str) -> Path:
    file = tmp_path / "devster.yaml"
    file.write_text(text)
    return file


def _errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load_project(_write(tmp_path, text), environ={})
    return [str(e) for e in info.value.errors]


def _load(tmp_path: Path, text: str) -> LoadedProject:
    return load_project(_write(tmp_path, text), environ={})


# --------------------------------------------------------------------------- references


@pytest.mark.parametrize(
    ("where", "yaml"),
    [
        ("tasks.a.cmd", "tasks:\n  a: {cmd: 'echo ${secret:s}'}\n"),
        ("tasks.a.cmd[1]", "tasks:\n  a: {cmd: [echo, '${secret:s}']}\n"),
        ("tasks.a.health.exec[1]", "tasks:\n  a: {cmd: x, health: {exec: [t, '${secret:s}']}}\n"),
        ("tasks.a.stop.command", "tasks:\n  a: {cmd: x, stop: {command: 'k ${secret:s}'}}\n"),
        (
            "tasks.a.liveness.http",
            "tasks:\n  a: {cmd: x, liveness: {http: 'http://${secret:s}'}}\n",
        ),
        (
            "environments.e.layers[0].docker.build.args.X",
            "environments:\n  e: {layers: [{docker: {build: {tag: t, args: {X: '${secret:s}'}}}}]}"
            "\ntasks:\n  a: {cmd: x}\n",
        ),
        ("secrets.t.command", "tasks:\n  a: {cmd: x}\n"),
    ],
)
def test_a_secret_on_anything_that_becomes_a_command_line_is_an_error_with_its_position(
    tmp_path: Path, where: str, yaml: str
) -> None:
    head = "secrets:\n  s: {env: S}\n"
    if where == "secrets.t.command":
        head += "  t: {command: 'show ${secret:s}'}\n"
    errors = _errors(tmp_path, head + yaml)
    assert len(errors) == 1, errors
    assert f": {where}: ${{secret:s}} cannot be used here" in errors[0]
    assert "env values and ssh passphrases" in errors[0]
    line = int(errors[0].split(":")[1])
    assert line >= 3  # the position of the value, not of the file


def test_secrets_in_env_values_and_passphrases_are_accepted(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        "secrets:\n  s: {env: S}\n"
        "environments:\n"
        "  e:\n"
        "    env: {A: '${secret:s}'}\n"
        "    layers:\n"
        "      - {ssh: {host: h, passphrase: '${secret:s}'}}\n"
        "      - {docker: {container: c, env: {B: 'x${secret:s}y'}}}\n"
        "hosts:\n  h1: {ssh: {host: h, passphrase: '${secret:s}'}}\n"
        "tasks:\n  a: {cmd: x, env: {URL: 'pg://u:${secret:s}@h/db'}}\n",
    )
    assert loaded.project.tasks["a"].env["URL"] == "pg://u:${secret:s}@h/db"
    assert loaded.secrets is None, "the loader never reads values"


def test_allowed_paths_are_env_values_and_passphrases_only() -> None:
    assert allowed_path(("tasks", "a", "env", "X"))
    assert allowed_path(("environments", "e", "layers", 2, "ssh", "passphrase"))
    assert not allowed_path(("environments", "e", "layers", "x", "ssh", "passphrase"))
    assert not allowed_path(("tasks", "a", "env"))
    assert not allowed_path(("tasks", "a", "cmd"))


def test_an_unknown_secret_name_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    errors = _errors(
        tmp_path,
        "secrets:\n  db_pass: {env: S}\n"
        "tasks:\n  a:\n    cmd: x\n    env: {P: '${secret:db_pas}'}\n",
    )
    assert errors == [
        f"{tmp_path / 'devster.yaml'}:6:14: tasks.a.env.P: unknown secret 'db_pas'; "
        "did you mean 'db_pass'?"
    ]


def test_a_reference_without_declared_secrets_says_how_to_declare_one(tmp_path: Path) -> None:
    (error,) = _errors(tmp_path, "tasks:\n  a: {cmd: x, env: {P: '${secret:nope}'}}\n")
    assert "unknown secret 'nope'; declare it under secrets:" in error


def test_a_malformed_reference_is_an_error(tmp_path: Path) -> None:
    (error,) = _errors(tmp_path, "tasks:\n  a: {cmd: x, env: {P: '${secret:a b}'}}\n")
    assert "invalid secret reference '${secret:a b}'" in error


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{}", "a secret needs exactly one of env, file, command, prompt; got none"),
        ("{env: A, file: b}", "a secret needs exactly one of env, file, command, prompt"),
        ("{env: A, colour: red}", "unknown key 'colour'"),
    ],
)
def test_a_secret_needs_exactly_one_source(tmp_path: Path, body: str, message: str) -> None:
    errors = _errors(tmp_path, f"secrets:\n  s: {body}\ntasks:\n  a: {{cmd: x}}\n")
    assert any(message in e for e in errors), errors


def test_python_projects_get_the_same_reference_checks(tmp_path: Path) -> None:
    file = tmp_path / "devster.py"
    file.write_text(
        "from devster_tui.config.schema import Project, Secret, Task\n"
        "project = Project(secrets={'s': Secret(env='S')},\n"
        "    tasks={'a': Task(cmd=['echo', '${secret:s}'])})\n"
    )
    with pytest.raises(ConfigErrors) as info:
        load_project(file, environ={})
    assert "${secret:s} cannot be used here" in str(info.value)


# --------------------------------------------------------------------------- sources


def _project(tmp_path: Path, secrets: str) -> LoadedProject:
    return _load(tmp_path, f"secrets:\n{secrets}tasks:\n  a: {{cmd: x}}\n")


def test_env_source_reads_the_devster_process_environment(tmp_path: Path) -> None:
    loaded = _project(tmp_path, "  s: {env: MY_S}\n")
    values = resolve_secrets(loaded, environ={"MY_S": VALUE})
    assert values.reveal() == {"s": VALUE}
    assert VALUE not in repr(values) and VALUE not in str(values)


def test_file_source_strips_one_newline_and_warns_when_others_may_read_it(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "s.txt"
    secret.write_text(VALUE + "\n\n")
    secret.chmod(0o644)
    loaded = _project(tmp_path, "  s: {file: s.txt}\n")
    values = resolve_secrets(loaded, environ={})
    assert values.reveal() == {"s": VALUE + "\n"}
    assert values.warnings == (
        "secret 's': s.txt may be read by group or others (mode 0644); run: chmod 600 s.txt",
    )
    secret.chmod(0o600)
    assert resolve_secrets(loaded, environ={}).warnings == ()


def test_command_source_runs_once_and_takes_stdout(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    loaded = _project(
        tmp_path,
        f"  s: {{command: [{PY}, -c, \"open('runs', 'a').write('x'); print('Vx9-' + 'q7Lz')\"]}}\n",
    )
    assert resolve_secrets(loaded, environ=dict(os.environ)).reveal() == {"s": "Vx9-q7Lz"}
    assert counter.read_text() == "x"


def test_prompt_source_is_asked_once_through_the_callback(tmp_path: Path) -> None:
    loaded = _project(tmp_path, "  s: {prompt: 'Database password'}\n  t: {env: T}\n")
    asked: list[Sequence[tuple[str, str]]] = []

    def ask(requests: Sequence[tuple[str, str]]) -> Mapping[str, str] | None:
        asked.append(requests)
        return {"s": VALUE}

    values = with_secrets(loaded, ask=ask, environ={"T": "t-value"})
    assert values.secrets is not None
    assert values.secrets.reveal() == {"s": VALUE, "t": "t-value"}
    assert asked == [[("s", "Database password")]]
    assert VALUE not in repr(values)


def test_every_unreadable_secret_is_reported_at_its_declaration_and_nothing_is_asked(
    tmp_path: Path,
) -> None:
    loaded = _project(
        tmp_path,
        "  e: {env: UNSET_VAR}\n"
        "  f: {file: missing.txt}\n"
        "  c: {command: 'echo no way >&2; exit 4'}\n"
        "  p: {prompt: Password}\n"
        "  z: {env: EMPTY}\n",
    )
    asked: list[object] = []

    def ask(requests: Sequence[tuple[str, str]]) -> Mapping[str, str] | None:
        asked.append(requests)
        return {}

    with pytest.raises(ConfigErrors) as info:
        resolve_secrets(loaded, ask=ask, environ={"EMPTY": ""})
    messages = [str(e) for e in info.value.errors]
    file = os.path.relpath(tmp_path / "devster.yaml")
    assert messages == [
        f"{file}:2:12: secrets.e.env: secret 'e': environment variable UNSET_VAR is not set",
        f"{file}:3:13: secrets.f.file: secret 'f': cannot read missing.txt: no such file",
        f"{file}:4:16: secrets.c.command: secret 'c': command 'echo no way >&2; exit 4' "
        "exited with 4: no way",
        f"{file}:6:12: secrets.z.env: secret 'z': the value is empty",
    ]
    assert asked == [], "no prompt while other secrets already failed"


def test_a_prompt_without_a_tui_fails_with_a_clear_message_instead_of_waiting(
    tmp_path: Path,
) -> None:
    loaded = _project(tmp_path, "  p: {prompt: Password}\n")
    with pytest.raises(ConfigErrors) as info:
        resolve_secrets(loaded, ask=None, environ={})
    (error,) = info.value.errors
    assert "only the TUI can show" in error.message and error.path == ("secrets", "p", "prompt")
    assert [e.message for e in prompt_errors(loaded)] == [error.message]


def test_a_cancelled_or_empty_prompt_is_an_error(tmp_path: Path) -> None:
    loaded = _project(tmp_path, "  p: {prompt: Password}\n")
    with pytest.raises(ConfigErrors, match="the prompt was cancelled"):
        resolve_secrets(loaded, ask=lambda _r: None, environ={})
    with pytest.raises(ConfigErrors, match="no value was entered"):
        resolve_secrets(loaded, ask=lambda _r: {"p": ""}, environ={})


def test_a_slow_or_missing_command_is_an_error(tmp_path: Path) -> None:
    loaded = _project(
        tmp_path,
        f"  slow: {{command: [{PY}, -c, 'import time; time.sleep(30)'], timeout: 300ms}}\n"
        "  gone: {command: [/nonexistent/pass, show]}\n",
    )
    with pytest.raises(ConfigErrors) as info:
        resolve_secrets(loaded, environ={})
    messages = [e.message for e in info.value.errors]
    assert any("did not finish within 0.3s" in m for m in messages), messages
    assert any("cannot run '/nonexistent/pass show'" in m for m in messages), messages


def test_a_failing_command_error_never_shows_a_value_read_before(tmp_path: Path) -> None:
    loaded = _project(
        tmp_path,
        "  a: {env: A}\n"
        f"  b: {{command: [{PY}, -c, \"import os, sys; sys.exit('bad ' + os.environ['A'])\"]}}\n",
    )
    with pytest.raises(ConfigErrors) as info:
        resolve_secrets(loaded, environ={**os.environ, "A": VALUE})
    assert VALUE not in str(info.value)
    assert "bad [redacted:a]" in str(info.value)


def test_devster_run_with_an_unreadable_secret_starts_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    _write(
        tmp_path,
        "secrets:\n  s: {file: nope.txt}\n"
        f"tasks:\n  a: {{kind: job, cmd: [{PY}, -c, \"open('started', 'w')\"], "
        "env: {S: '${secret:s}'}}\n",
    )
    import subprocess

    done = subprocess.run(
        [PY, "-m", "devster_tui", "run", "a"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "devster.yaml:2:13: secrets.s.file: secret 's': cannot read nope.txt" in done.stderr
    assert not marker.exists()
    assert not (tmp_path / ".devster").exists()


# --------------------------------------------------------------------------- redaction


def test_a_longer_value_wins_over_a_shorter_one_it_contains() -> None:
    redactor = Redactor({"short": "abc", "long": "abcdef"})
    assert redactor.redact_bytes(b"1abcdef2abc3") == b"1[redacted:long]2[redacted:short]3"
    assert redactor.redact_text("abcdef") == "[redacted:long]"


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.sampled_from([b"noise ", b"p4ss-W0rd", b"p4ss", b"\n", b"W0rd", b"xy"])),
    cuts=st.lists(st.integers(min_value=1, max_value=9), min_size=1),
)
def test_values_split_across_any_chunks_are_redacted_like_whole_text(
    pieces: list[bytes], cuts: list[int]
) -> None:
    redactor = Redactor({"pw": "p4ss-W0rd", "x": "s-W"})
    data = b"".join(pieces)
    stream = redactor.stream()
    out = []
    at = 0
    index = 0
    while at < len(data):
        size = cuts[index % len(cuts)]
        out.append(stream.feed(data[at : at + size]))
        at += size
        index += 1
    out.append(stream.flush())
    assert b"".join(out) == redactor.redact_bytes(data)
    assert b"p4ss-W0rd" not in b"".join(out)


def test_output_store_stores_and_logs_a_split_value_redacted(tmp_path: Path) -> None:
    store = OutputStore(tmp_path / "logs")
    store.set_redactor(Redactor({"pw": VALUE}))
    store.append("a", "stdout", b"one\npass=" + VALUE[:5].encode(), 1)
    assert store.read("a", "stdout", 0, 10)[-1].text == "one"
    store.append("a", "stdout", VALUE[5:].encode() + b" ok\nprefix " + VALUE[:3].encode(), 1)
    store.finish("a", "stdout")
    texts = [line.text for line in store.read("a", "stdout", 0, 10)]
    assert texts == ["one", "pass=[redacted:pw] ok", "prefix " + VALUE[:3]]
    store.close()
    log = (tmp_path / "logs" / "a.stdout.log").read_bytes()
    assert log == b"one\npass=[redacted:pw] ok\nprefix " + VALUE[:3].encode()


def test_output_store_without_secrets_stays_byte_exact(tmp_path: Path) -> None:
    store = OutputStore(tmp_path / "logs")
    store.set_redactor(Redactor({}))
    store.append("a", "stdout", b"[redacted:pw] \xff\r\n", 1)
    store.close()
    assert (tmp_path / "logs" / "a.stdout.log").read_bytes() == b"[redacted:pw] \xff\r\n"


def test_event_data_is_redacted_before_it_is_reduced_recorded_or_announced() -> None:
    store = Store()
    store.redact = Redactor({"pw": VALUE}).redact_data
    seen = []
    store.subscribe(lambda event, _state: seen.append(event))
    event = store.dispatch(
        T.TASK_HEALTH,
        "a",
        healthy=False,
        probe="health",
        detail=f"exit 1: {VALUE}",
        failures=1,
    )
    assert event.data["detail"] == "exit 1: [redacted:pw]"
    assert seen == [event]
    failed = store.dispatch_raw(T.WARNING, message="x", nested={"k": [VALUE, 1]})
    assert failed.data["nested"] == {"k": ["[redacted:pw]", 1]}


# --------------------------------------------------------------------------- processes


def test_layer_credentials_get_values_for_executors_while_the_project_keeps_references(
    tmp_path: Path,
) -> None:
    loaded = _load(
        tmp_path,
        "secrets:\n  s: {env: S}\n"
        "environments:\n  e:\n    layers:\n"
        "      - {ssh: {host: h, passphrase: '${secret:s}'}}\n"
        "      - {docker: {container: c, env: {B: 'x${secret:s}'}}}\n"
        "hosts:\n  h1: {ssh: {host: h, passphrase: '${secret:s}'}}\n"
        "tasks:\n  a: {cmd: x}\n",
    )
    values = SecretValues({"s": VALUE})
    resolved = with_layer_secrets(loaded.project, values)
    ssh, docker = resolved.environments["e"].layers
    assert ssh.ssh is not None and ssh.ssh.passphrase == VALUE
    assert docker.docker is not None and docker.docker.env == {"B": "x" + VALUE}
    assert resolved.hosts["h1"].ssh.passphrase == VALUE
    original = loaded.project.environments["e"].layers[0].ssh
    assert original is not None and original.passphrase == "${secret:s}"


class _Recording:
    """Starts processes with a real local executor and keeps each spec it was given."""

    def __init__(self) -> None:
        self.inner = LocalExecutor()
        self.specs: list[ProcessSpec] = []

    async def spawn(self, spec: ProcessSpec, on_output: OutputSink, on_eof: EofSink) -> Process:
        self.specs.append(spec)
        return await self.inner.spawn(spec, on_output, on_eof)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_values_reach_a_process_only_through_its_environment(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "secrets:\n  s: {env: MY_S}\n"
        "tasks:\n"
        f"  a: {{kind: job, cmd: [{PY}, -c, \"import os; print(os.environ['S'])\"], "
        "env: {S: '${secret:s}'}}\n",
    )
    loaded = with_secrets(
        load_project(tmp_path / "devster.yaml", environ={}), environ={"MY_S": VALUE}
    )
    executor = _Recording()

    async def main() -> list[str]:
        engine = Engine(loaded, executor=executor, state_dir=tmp_path / "state")
        try:
            await engine.start()
            await asyncio.wait_for(engine.wait_finished(), 30)
            return [line.text for line in engine.output.read("a", "stdout", 0, 10)]
        finally:
            await engine.shutdown()
            await engine.close()

    assert asyncio.run(main()) == ["[redacted:s]"]
    (spec,) = executor.specs
    assert spec.env["S"] == VALUE
    assert spec.secret_values == {"s": VALUE}
    assert all(VALUE not in arg for arg in spec.argv)
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            assert VALUE.encode() not in path.read_bytes(), path


def test_an_engine_given_unresolved_secrets_resolves_them_at_start(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "secrets:\n  s: {env: DEVSTER_T_UNSET_FOR_SURE}\ntasks:\n  a: {cmd: x, kind: job}\n",
    )
    loaded = load_project(tmp_path / "devster.yaml", environ={})

    async def main() -> None:
        engine = Engine(loaded, state_dir=tmp_path / "state")
        try:
            await engine.start()
        finally:
            await engine.close()

    with pytest.raises(ConfigErrors, match="DEVSTER_T_UNSET_FOR_SURE is not set"):
        asyncio.run(main())


def test_crash_reports_in_the_log_show_no_value() -> None:
    import io
    import logging

    from devster_tui.engine.secrets import redact_log_records

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("devster_tui.engine.runner")
    logger.addHandler(handler)
    redact_log_records(Redactor({"pw": VALUE}))
    try:
        try:
            raise RuntimeError(f"connect failed with password {VALUE}")
        except RuntimeError:
            logger.exception("runner of task %s crashed (%s)", "a", VALUE)
    finally:
        redact_log_records(None)
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "runner of task a crashed ([redacted:pw])" in text
    assert "RuntimeError: connect failed with password [redacted:pw]" in text
    assert VALUE not in text


def test_a_secret_value_reaching_a_command_through_a_variable_is_an_error(
    tmp_path: Path,
) -> None:
    _write(
        tmp_path,
        "secrets:\n  db: {env: DBPW}\ntasks:\n  a: {cmd: 'psql -p ${DBPW}', kind: job}\n",
    )
    loaded = load_project(tmp_path / "devster.yaml", environ={"DBPW": VALUE})
    with pytest.raises(ConfigErrors) as info:
        resolve_secrets(loaded, environ={"DBPW": VALUE})
    (error,) = info.value.errors
    assert (error.line, error.path) == (4, ("tasks", "a", "cmd"))
    assert error.message.startswith("secret 'db': its value is written here")
    assert VALUE not in str(info.value)
