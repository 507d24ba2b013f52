"""Reading the values of ``secrets:`` once at start-up, and wiring their redaction.

Why all at once and before anything starts: a secret that cannot be read (an unset
variable, a missing file, a failing ``pass show``) would otherwise fail one task minutes
into a session; instead every problem is reported together, as configuration errors naming
the secret and the position of its declaration, and nothing starts.  Prompts are asked last,
through a callback the TUI provides; without one (headless runs) a prompt is an error, never
a wait.  Error messages never contain a value: a failing command's stderr is redacted with
every value read so far.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import stat
import subprocess
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devster_tui.config.errors import ConfigError, ConfigErrors, KeyPath
from devster_tui.config.schema import Layer, Project
from devster_tui.config.secrets import SecretValues
from devster_tui.config.shell import command_argv
from devster_tui.state.events import T
from devster_tui.state.redact import Redactor

if TYPE_CHECKING:
    from devster_tui.config.loader import LoadedProject
    from devster_tui.config.schema import Secret
    from devster_tui.engine.protocols import SecretsHolder
    from devster_tui.state.output import OutputStore
    from devster_tui.state.store import Store

PromptRequest = tuple[str, str]
"""``(secret name, question)`` for one prompt."""

Ask = Callable[[Sequence[PromptRequest]], Mapping[str, str] | None]
"""Asks every prompt once (masked); returns name -> answer, or None when cancelled."""


def _strip_newline(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


def _file_name(loaded: LoadedProject) -> str:
    try:
        return os.path.relpath(loaded.file)
    except ValueError:
        return str(loaded.file)


def resolve_secrets(
    loaded: LoadedProject,
    *,
    ask: Ask | None = None,
    environ: Mapping[str, str] | None = None,
) -> SecretValues:
    """Read the value of every declared secret.

    Args:
        loaded: The validated project.
        ask: Asks the ``prompt`` secrets (the TUI); None makes each prompt an error.
        environ: The devster process's environment (default: ``os.environ``).

    Returns:
        The values, with warnings (a secret file that group or others may read).

    Raises:
        ConfigErrors: one error per secret that could not be read, at its declaration.
    """
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    warnings: list[str] = []
    errors: list[ConfigError] = []
    prompts: list[tuple[str, Secret]] = []

    def fail(name: str, key: str, message: str) -> None:
        errors.append(_error_at(loaded, name, key, message))

    for name, secret in loaded.project.secrets.items():
        source = secret.source
        if source == "prompt":
            prompts.append((name, secret))
            continue
        if source == "env":
            assert secret.env is not None
            value = env.get(secret.env)
            if value is None:
                fail(name, "env", f"environment variable {secret.env} is not set")
                continue
        elif source == "file":
            assert secret.file is not None
            read = _read_file(loaded.root / Path(secret.file).expanduser(), secret.file)
            if isinstance(read, _Problem):
                fail(name, "file", read.message)
                continue
            value, warning = read
            if warning:
                warnings.append(f"secret {name!r}: {warning}")
        else:
            assert secret.command is not None
            ran = _run_command(secret.command, loaded.root, secret.timeout, env)
            if isinstance(ran, _Problem):
                redactor = Redactor(values)
                fail(name, "command", redactor.redact_text(ran.message))
                continue
            value = ran
        if value == "":
            fail(name, source, "the value is empty")
            continue
        values[name] = value
    if prompts:
        if ask is None:
            for name, _secret in prompts:
                fail(name, "prompt", _NO_PROMPT)
        elif not errors:
            answers = ask([(name, secret.prompt or name) for name, secret in prompts])
            for name, _secret in prompts:
                if answers is None:
                    fail(name, "prompt", "the prompt was cancelled")
                elif not answers.get(name):
                    fail(name, "prompt", "no value was entered")
                else:
                    values[name] = answers[name]
    if not errors:
        errors.extend(_values_on_command_lines(loaded, values))
    if errors:
        raise ConfigErrors(errors)
    ordered = {name: values[name] for name in loaded.project.secrets if name in values}
    return SecretValues(ordered, warnings)


MIN_CHECKED = 4
"""Values shorter than this are not searched for in commands (they would match by chance)."""


def _values_on_command_lines(loaded: LoadedProject, values: Mapping[str, str]) -> list[ConfigError]:
    """An error for every place outside env values and passphrases whose text holds a
    secret's value (e.g. ``cmd: echo ${DB_PASSWORD}`` when ``DB_PASSWORD`` is a secret's
    env source): such a value would end up on a command line."""
    from devster_tui.config.secrets import allowed_path

    checked = {name: value for name, value in values.items() if len(value) >= MIN_CHECKED}
    if not checked:
        return []
    data = loaded.project.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    data.pop("secrets", None)
    errors: list[ConfigError] = []

    def walk(node: Any, path: KeyPath) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                walk(item, (*path, key))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, (*path, index))
        elif isinstance(node, str) and not allowed_path(path):
            for name, value in checked.items():
                if value in node:
                    message = (
                        "its value is written here (through a variable?), and this ends up "
                        f"on a command line; use ${{secret:{name}}} in env instead"
                    )
                    error = _error_at(loaded, name, loaded.project.secrets[name].source, message)
                    errors.append(_moved(error, loaded, path))

    walk(data, ())
    return errors


def _moved(error: ConfigError, loaded: LoadedProject, path: KeyPath) -> ConfigError:
    """``error`` placed at ``path`` (where the value was found) instead of the declaration."""
    source_map = loaded.source_map
    pos = source_map.value(path) if source_map is not None else None
    line, col = (pos.line, pos.col) if pos is not None else (0, 0)
    return dataclasses.replace(error, line=line, col=col, path=path)


def with_secrets(
    loaded: LoadedProject,
    *,
    ask: Ask | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedProject:
    """``loaded`` with its secrets resolved (itself when it declares none or has them).

    Raises:
        ConfigErrors: see :func:`resolve_secrets`.
    """
    if loaded.secrets is not None or not loaded.project.secrets:
        return loaded
    return dataclasses.replace(loaded, secrets=resolve_secrets(loaded, ask=ask, environ=environ))


def prompt_errors(loaded: LoadedProject) -> list[ConfigError]:
    """An error for each ``prompt`` secret, for runs that cannot ask (``up -d``)."""
    return [
        _error_at(loaded, name, "prompt", _NO_PROMPT)
        for name, secret in loaded.project.secrets.items()
        if secret.source == "prompt"
    ]


_NO_PROMPT = (
    "asks for its value with a prompt, which only the TUI can show: run 'devster up' in a "
    "terminal, or give the secret another source (env, file or command)"
)


def _error_at(loaded: LoadedProject, name: str, key: str, message: str) -> ConfigError:
    path: KeyPath = ("secrets", name, key)
    source_map = loaded.source_map
    pos = source_map.value(path) if source_map is not None else None
    line, col = (pos.line, pos.col) if pos is not None else (0, 0)
    return ConfigError(_file_name(loaded), line, col, path, f"secret {name!r}: {message}")


class _Problem:
    """Why a source could not be read (a message without the value)."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def _read_file(path: Path, shown: str) -> tuple[str, str | None] | _Problem:
    try:
        info = os.stat(path)
        raw = path.read_bytes()
    except FileNotFoundError:
        return _Problem(f"cannot read {shown}: no such file")
    except OSError as exc:
        return _Problem(f"cannot read {shown}: {exc.strerror}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _Problem(f"{shown} is not UTF-8 text")
    warning = None
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o044:
        warning = (
            f"{shown} may be read by group or others (mode {mode:04o}); run: chmod 600 {shown}"
        )
    return _strip_newline(text), warning


def _run_command(
    command: str | list[str], cwd: Path, timeout: float, env: Mapping[str, str]
) -> str | _Problem:
    argv = command_argv(command)
    shown = command if isinstance(command, str) else " ".join(command)
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return _Problem(f"command {shown!r} did not finish within {timeout:g}s")
    except OSError as exc:
        return _Problem(f"cannot run {shown!r}: {exc.strerror}")
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = f": {lines[-1][:200]}" if lines else ""
        redacted = Redactor({"output": done.stdout.decode("utf-8", "replace").strip()})
        code = done.returncode
        status = f"exited with {code}" if code > 0 else f"was killed by signal {-code}"
        return _Problem(redacted.redact_text(f"command {shown!r} {status}{why}"))
    try:
        return _strip_newline(done.stdout.decode("utf-8"))
    except UnicodeDecodeError:
        return _Problem(f"command {shown!r} printed something that is not UTF-8 text")


def install_redaction(values: SecretValues, store: Store, output: OutputStore) -> Redactor | None:
    """Redact ``values`` from every event and every output chunk from now on.

    Returns:
        The redactor (None when there is nothing to redact).
    """
    redactor = Redactor(values.reveal())
    if redactor.empty:
        return None
    store.redact = redactor.redact_data
    output.set_redactor(redactor)
    redact_log_records(redactor)
    return redactor


_log_redactor: Redactor | None = None
_base_factory: Callable[..., logging.LogRecord] | None = None


def redact_log_records(redactor: Redactor | None) -> None:
    """Redact the messages and tracebacks of every log record of this process (crash
    reports of supervised coroutines included) with ``redactor`` from now on.

    The record factory is wrapped once per process; later calls swap the values.
    """
    global _log_redactor, _base_factory
    _log_redactor = redactor
    if _base_factory is not None:
        return
    base = _base_factory = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        current = _log_redactor
        if current is None:
            return record
        message = record.getMessage()
        cleaned = current.redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[0] is not None:
            text = "".join(traceback.format_exception(*record.exc_info))
            record.exc_text = current.redact_text(text.rstrip("\n"))
        return record

    logging.setLogRecordFactory(factory)


async def prepare(engine: SecretsHolder) -> None:
    """Resolve the engine's secrets if nobody did (no prompts), redact them from then on,
    and announce the warnings found while reading them.

    Raises:
        ConfigErrors: when a secret cannot be read (nothing has started yet).
    """
    loaded = engine.loaded
    if engine.secrets is None and loaded.project.secrets:
        engine.secrets = await asyncio.to_thread(resolve_secrets, loaded)
    values = engine.secrets
    if values is None:
        return
    if engine.store.redact is None:
        install_redaction(values, engine.store, engine.output)
    for warning in values.warnings:
        engine.store.dispatch(T.WARNING, message=warning)


def substitute_env(env: Mapping[str, str], values: SecretValues | None) -> dict[str, str]:
    """A process environment with every ``${secret:NAME}`` replaced by its value."""
    if values is None:
        return dict(env)
    return {key: values.substitute(value) for key, value in env.items()}


def with_layer_secrets(project: Project, values: SecretValues | None) -> Project:
    """``project`` with secret references in layer credentials resolved: ssh passphrases
    (environments and hosts) and docker layers' ``env``; for the executors only, never for
    anything that is shown or recorded."""
    if values is None or not len(values):
        return project

    def layer(item: Layer) -> Layer:
        if item.ssh is not None and item.ssh.passphrase is not None:
            ssh = item.ssh.model_copy(update={"passphrase": values.substitute(item.ssh.passphrase)})
            return item.model_copy(update={"ssh": ssh})
        if item.docker is not None and item.docker.env:
            docker = item.docker.model_copy(update={"env": substitute_env(item.docker.env, values)})
            return item.model_copy(update={"docker": docker})
        return item

    environments = {
        name: env.model_copy(update={"layers": [layer(item) for item in env.layers]})
        for name, env in project.environments.items()
    }
    hosts = {
        name: host
        if host.ssh.passphrase is None
        else host.model_copy(
            update={
                "ssh": host.ssh.model_copy(
                    update={"passphrase": values.substitute(host.ssh.passphrase)}
                )
            }
        )
        for name, host in project.hosts.items()
    }
    return project.model_copy(update={"environments": environments, "hosts": hosts})
