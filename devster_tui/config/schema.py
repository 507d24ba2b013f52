"""The configuration model: frozen pydantic classes for projects, tasks, observers and layers.

These classes are the one source of truth for the configuration language.  The YAML loader
validates into them, ``devster.py`` files build them directly, ``devster schema`` exports
their JSON Schema, and docs/configuration.md documents every field (a test checks that).
Every model rejects unknown keys; keys starting with ``x-`` are removed by the loader before
validation so users can keep their own anchors and notes there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from devster_tui.config.shell import command_argv
from devster_tui.config.types import Bool, Duration, EnvValue, Float, Int, Signal, Size, Text

if TYPE_CHECKING:
    from pydantic.config import JsonDict

Port = Annotated[Int, Field(ge=1, le=65535)]
ExitCode = Annotated[Int, Field(ge=0, le=255)]
"""A process exit status: 0-255 is all a POSIX parent can see."""
"""A TCP port, 1-65535."""

Name = Annotated[Text, Field(min_length=1)]
"""A non-empty name."""

TASK_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]*$"
"""What a task name may look like (the JSON Schema carries it as ``propertyNames``)."""

TaskName = Annotated[Text, Field(pattern=TASK_NAME_PATTERN)]
"""A task name: letters, digits, ``_`` and ``-`` (no dots: ``TASK.stdout`` names streams)."""

Command = Text | list[Text]
"""A command: a string run by ``/bin/sh -c``, or an argv list executed directly."""


def _describe(schema: JsonDict, model: type[Any]) -> None:
    """JSON Schema hook: each property's description is its field's docstring.

    Read only when a schema is generated, not when the models are built (see
    :mod:`devster_tui.config.docstrings` for the start-up cost this avoids).
    """
    from devster_tui.config.docstrings import describe_properties

    describe_properties(schema, model)


class _Model(BaseModel):
    """Base of every configuration model: frozen, unknown keys rejected."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        validate_default=False,
        json_schema_extra=_describe,
    )


# --------------------------------------------------------------------------- layers


class DockerBuild(_Model):
    """How to build an image (``docker build``)."""

    context: Text = "."
    """Build context directory, relative to the project file."""
    dockerfile: Text | None = None
    """Dockerfile path inside the context (default ``Dockerfile``)."""
    tag: Text
    """Tag given to the built image, e.g. ``app:dev``."""
    args: dict[Text, EnvValue] = Field(default_factory=dict)
    """Build arguments (``--build-arg``)."""
    target: Text | None = None
    """Multi-stage build target."""


class DockerLayer(_Model):
    """Run through Docker: exec into a container, run an image, or build one."""

    container: Text | None = None
    """Exec into this existing container (name or id)."""
    image: Text | None = None
    """Run a new container from this image."""
    build: DockerBuild | None = None
    """Build an image; a task with this layer and no ``cmd`` is the build job itself."""
    labels: dict[Text, Text] = Field(default_factory=dict)
    """Find the container to exec into by these labels (when ``container`` is not given),
    and put them on containers that devster runs."""
    name: Text | None = None
    """Name of the container devster runs from ``image``."""
    user: Text | None = None
    """User to run as inside the container."""
    workdir: Text | None = None
    """Working directory inside the container."""
    env: dict[Text, EnvValue] = Field(default_factory=dict)
    """Extra environment variables inside the container."""
    ports: list[Text] = Field(default_factory=list)
    """Published ports for ``image`` runs, as ``HOST:CONTAINER`` (``8080:80``)."""
    volumes: list[Text] = Field(default_factory=list)
    """Volumes for ``image`` runs, as ``SRC:DEST[:ro]``."""
    network: Text | None = None
    """Network for ``image`` runs."""
    tty: Bool = False
    """Allocate a pseudo-terminal (stdout and stderr are then merged)."""
    remove: Bool = True
    """Remove a container that devster ran when its task stops."""
    host: Text | None = None
    """Docker daemon address (``unix:///var/run/docker.sock``, ``tcp://...``); default: the
    environment's ``DOCKER_HOST`` or the local socket, or the remote host's socket after ssh."""

    @model_validator(mode="after")
    def _one_mode(self) -> DockerLayer:
        modes = [m for m in ("container", "image", "build") if getattr(self, m) is not None]
        if not modes and not self.labels:
            raise ValueError("a docker layer needs one of: container, image, build (or labels)")
        if len(modes) > 1:
            raise ValueError(
                f"a docker layer takes only one of container, image, build; got {modes}"
            )
        return self


HostKeyPolicy = Literal["strict", "accept-new", "off"]


class SshLayer(_Model):
    """Run on a remote host over SSH."""

    host: Name
    """Host name, address, or a ``Host`` alias from ``~/.ssh/config``."""
    user: Text | None = None
    """Login user (default: from ``~/.ssh/config`` or the local user)."""
    port: Port | None = None
    """SSH port (default: from ``~/.ssh/config`` or 22)."""
    identity: Text | list[Text] | None = None
    """Private key file(s)."""
    passphrase: Text | None = None
    """Passphrase of the identity; use a secret reference, never a literal."""
    jump: Text | list[Text] | None = None
    """Jump host(s) to connect through, as ``[user@]host[:port]`` or names of ``hosts``."""
    known_hosts: Text | None = None
    """known_hosts file to verify host keys against (default ``~/.ssh/known_hosts``)."""
    host_key_check: HostKeyPolicy = "strict"
    """``strict`` (default): unknown or changed keys fail; ``accept-new``: remember unknown
    keys, fail on changed ones; ``off``: no checking (warned in the event log on each connect)."""
    agent: Bool = True
    """Use the SSH agent for authentication when one is running."""
    agent_forwarding: Bool = False
    """Forward the local agent to the remote host."""
    use_ssh_config: Bool = True
    """Read ``~/.ssh/config`` for this host."""
    keepalive: Duration = 15.0
    """Interval between keepalive probes; the link counts as dropped after 3 unanswered."""
    connect_timeout: Duration = 10.0
    """How long a connection attempt may take."""
    reconnect: Bool = True
    """Reconnect with backoff when the link drops."""
    max_sessions: Annotated[Int, Field(ge=1)] = 10
    """Sessions opened per connection at most (the server's ``MaxSessions``)."""


class LocalLayer(_Model):
    """Run on this machine (the default, and the innermost layer of every chain)."""


class Layer(_Model):
    """One layer of an environment: exactly one of ``local``, ``docker``, ``ssh``.

    In YAML a layer may also be the bare string ``local``.
    """

    local: LocalLayer | None = None
    """Run locally."""
    docker: DockerLayer | None = None
    """Run through Docker."""
    ssh: SshLayer | None = None
    """Run over SSH."""

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            if data == "local":
                return {"local": {}}
            raise ValueError(f"a layer written as text must be 'local', got {data!r}")
        if isinstance(data, dict) and data.get("local", 0) is None:
            return {**data, "local": {}}
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Layer:
        kinds = [k for k in ("local", "docker", "ssh") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"a layer needs exactly one of local, docker, ssh; got {kinds or 'none'}"
            )
        return self

    @property
    def kind(self) -> str:
        """``local``, ``docker`` or ``ssh``."""
        for k in ("local", "docker", "ssh"):
            if getattr(self, k) is not None:
                return k
        raise AssertionError("validated layer has no kind")


class Environment(_Model):
    """Where tasks run: layers applied in order, outermost first."""

    layers: list[Layer] = Field(default_factory=list)
    """The chain, e.g. ``[{ssh: ...}, {ssh: ...}, {docker: {container: app}}]``."""
    env: dict[Text, EnvValue] = Field(default_factory=dict)
    """Environment variables for every task in this environment."""
    description: Text | None = None
    """Free text shown in the TUI."""


class Host(_Model):
    """A named host of the inventory, with labels for fan-out selectors."""

    ssh: SshLayer
    """How to reach it."""
    labels: dict[Text, Text] = Field(default_factory=dict)
    """Labels matched by task ``hosts`` selectors."""
    environment: Text | None = None
    """An environment whose layers run after the ssh hop (e.g. a docker exec on the host)."""


# --------------------------------------------------------------------------- observers


class FilesObserver(_Model):
    """Fires when files change."""

    paths: list[Text] = Field(min_length=1)
    """Files or directories to watch, relative to the project file; they may not exist yet."""
    include: list[Text] = Field(default_factory=list)
    """Only changes matching one of these globs count (default: all)."""
    ignore: list[Text] = Field(default_factory=list)
    """Changes matching these globs never count."""
    default_ignores: Bool = True
    """Also ignore .git, node_modules, __pycache__, .devster and editor swap/backup files."""
    debounce: Duration = 0.05
    """Quiet time that ends a burst of changes; one burst fires once."""
    poll: Bool = False
    """Poll instead of inotify (network file systems, containers)."""
    poll_fallback: Bool = False
    """Fall back to polling when inotify watches run out."""


class ManualObserver(_Model):
    """A gate a person approves in the TUI, the palette or with ``devster trigger``."""

    prompt: Text = "Run?"
    """Question shown while the gate waits."""
    approve: Literal["once", "always"] = "once"
    """``once``: each run waits for approval; ``always``: the first approval opens the gate
    for the rest of the session."""


class TaskObserver(_Model):
    """Fires when another task finishes."""

    task: Name
    """The task to watch."""
    on: Literal["success", "failure", "any"] = "success"
    """Which outcome fires."""


class LogObserver(_Model):
    """Fires when another task prints a line matching a pattern."""

    task: Name
    """The task whose output is matched."""
    pattern: Text
    """A regular expression (Python syntax), searched in each line."""
    stream: Literal["stdout", "stderr", "both"] = "both"
    """Which stream to match."""

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        import re

        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        return value


class IntervalObserver(_Model):
    """Fires on a timer."""

    every: Duration
    """Period between firings."""

    @field_validator("every")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("an interval must be longer than 0")
        return value


class Observer(_Model):
    """An edge that fires a trigger: exactly one of files, manual, task, log, interval."""

    files: FilesObserver | None = None
    """File changes."""
    manual: ManualObserver | None = None
    """A manual gate."""
    task: TaskObserver | None = None
    """Another task finished."""
    log: LogObserver | None = None
    """A log line matched."""
    interval: IntervalObserver | None = None
    """A timer."""
    description: Text | None = None
    """Free text shown in the TUI."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Observer:
        kinds = [k for k in OBSERVER_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"an observer needs exactly one of {', '.join(OBSERVER_KINDS)}; "
                f"got {kinds or 'none'}"
            )
        return self

    @property
    def kind(self) -> str:
        """Which kind of observer this is."""
        for k in OBSERVER_KINDS:
            if getattr(self, k) is not None:
                return k
        raise AssertionError("validated observer has no kind")


OBSERVER_KINDS = ("files", "manual", "task", "log", "interval")


# --------------------------------------------------------------------------- task parts

Condition = Literal["started", "healthy", "log_ready", "completed", "succeeded"]
Rule = Literal["restart", "stop", "ignore"]


def default_on_restart(rule: Rule | None, dependency_kind: str) -> Rule:
    """``on_restart`` as set, else by the dependency's kind (``job``: restart, else ignore).

    Why by kind: a rebuilt artifact must reach what uses it, while users of docker
    compose, Tilt and process-compose do not expect a restarted service to restart its
    dependents (a rebuilt api restarting the front-end surprised them).
    """
    if rule is not None:
        return rule
    return "restart" if dependency_kind == "job" else "ignore"


class Dependency(_Model):
    """How a task depends on another one."""

    condition: Condition = "started"
    """What the dependency must reach before the dependent starts: ``started``,
    ``healthy`` (its health check passes), ``log_ready`` (its ``ready_log`` line
    appeared), ``completed`` (a job ended, any exit) or ``succeeded`` (a job exited 0 or a
    success code)."""
    timeout: Duration | None = None
    """How long to wait for the condition before the dependent is blocked (default: no
    limit for jobs' completion, 5m otherwise)."""
    on_restart: Rule | None = None
    """What happens to the dependent when the dependency runs again: ``restart``, ``stop``
    or ``ignore``.  Unset, it follows the dependency's kind: a job that ran again (a
    rebuild) restarts its dependents once it has succeeded; a restarted service does not
    restart its dependents (as in docker compose, Tilt and process-compose)."""

    def restart_rule(self, dependency_kind: str) -> Rule:
        """The effective ``on_restart`` rule for a dependency of ``dependency_kind``."""
        return default_on_restart(self.on_restart, dependency_kind)

    on_failure: Rule = "ignore"
    """What happens to the dependent when the dependency fails."""


class Backoff(_Model):
    """Exponential backoff between restarts."""

    initial: Duration = 0.5
    """First delay."""
    factor: Annotated[Float, Field(ge=1.0)] = 2.0
    """Multiplier per consecutive restart."""
    max: Duration = 30.0
    """Longest delay."""
    jitter: Annotated[Float, Field(ge=0.0, le=1.0)] = 0.1
    """Random spread, as a fraction of the delay (0.1 = +-10%)."""


RestartPolicyName = Literal["no", "on-failure", "always"]


class RestartPolicy(_Model):
    """When and how often a task is restarted after it exits."""

    policy: RestartPolicyName = "no"
    """``no``, ``on-failure`` (exit not in success codes, or killed), or ``always``."""
    backoff: Backoff = Field(default_factory=Backoff)
    """Delay between restarts."""
    max_restarts: Annotated[Int, Field(ge=0)] | None = None
    """Restarts allowed within ``window``; one more fails the task (default: unlimited)."""
    window: Duration = 60.0
    """The window over which ``max_restarts`` counts."""
    stable_after: Duration = 10.0
    """A run this long resets the backoff delay."""

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"policy": data}
        return data


class HealthCheck(_Model):
    """A probe: exactly one of exec, http, tcp, log."""

    exec: Command | None = None
    """Run a command (through the task's layers); exit 0 is healthy."""
    http: Text | None = None
    """GET a URL; a 2xx or 3xx answer is healthy."""
    tcp: Port | Text | None = None
    """Connect to a port (``5432``) or ``host:port``."""
    log: Text | None = None
    """A regular expression; healthy once a matching line has been printed."""
    interval: Duration = 2.0
    """Time between probes."""
    timeout: Duration = 2.0
    """How long one probe may take."""
    retries: Annotated[Int, Field(ge=1)] = 3
    """Consecutive failures before the task counts as unhealthy."""
    start_period: Duration = 0.0
    """Failures during this time after start do not count."""

    @field_validator("tcp")
    @classmethod
    def _tcp_target(cls, value: int | str | None) -> int | str | None:
        # A number out of range fails the Port branch and would pass as text: check it here.
        if isinstance(value, str) and "${" not in value:
            host, sep, port = value.rpartition(":")
            if not port.isdigit() or (sep and not host):
                raise ValueError(f"expected PORT or HOST:PORT, got {value!r}")
            if not 1 <= int(port) <= 65535:
                raise ValueError(f"a port must be between 1 and 65535, got {port}")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> HealthCheck:
        kinds = [k for k in HEALTH_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"a health check needs exactly one of {', '.join(HEALTH_KINDS)}; "
                f"got {kinds or 'none'}"
            )
        return self

    @property
    def kind(self) -> str:
        """Which probe this is."""
        for k in HEALTH_KINDS:
            if getattr(self, k) is not None:
                return k
        raise AssertionError("validated health check has no kind")


HEALTH_KINDS = ("exec", "http", "tcp", "log")


class StopSpec(_Model):
    """How a task is stopped."""

    signal: Signal = "SIGTERM"
    """Signal sent to the task's whole process group."""
    timeout: Duration = 10.0
    """Grace period before the whole group is killed with SIGKILL."""
    command: Command | None = None
    """A command run instead of sending ``signal`` (the kill after ``timeout`` still applies)."""


StreamRef = Annotated[Text, Field(pattern=r"^[^.\s]+(\.(stdout|stderr))?$")]
"""``TASK``, ``TASK.stdout`` or ``TASK.stderr``."""


class StdinSpec(_Model):
    """Where a task's standard input comes from: one of from, file, console.

    In YAML, ``stdin`` may also be the text ``console``, ``none`` or a stream reference
    such as ``api.stderr``.
    """

    from_: StreamRef | list[StreamRef] | None = Field(default=None, alias="from")
    """Another task's ``TASK.stdout``, ``TASK.stderr`` or ``TASK`` (both), or a list."""
    file: Text | None = None
    """A file, read once from the start."""
    console: Bool = False
    """Typed in the TUI (``devster`` sends it with a newline)."""
    backpressure: Literal["block", "drop"] = "block"
    """When the consumer is slower than the producer: ``block`` loses nothing: once the
    consumer's buffer is full devster stops reading the producer's output, which then
    waits in ``write()`` (never killed, no SIGPIPE) until the buffer is down to half, so the
    producer runs at the pace of its slowest blocking consumer, and waits while that
    consumer is not running once its buffer is full; ``drop`` never slows the producer,
    discards the oldest lines and counts every drop as an event."""
    buffer: Annotated[Int, Field(ge=1)] = 10000
    """Lines buffered per consumer (with ``block``: where the producer is paused)."""

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            if data == "console":
                return {"console": True}
            if data == "none":
                return {}
            return {"from": data}
        return data

    @model_validator(mode="after")
    def _at_most_one(self) -> StdinSpec:
        kinds = [
            k
            for k, v in (("from", self.from_), ("file", self.file), ("console", self.console))
            if v
        ]
        if len(kinds) > 1:
            raise ValueError(f"stdin takes one of from, file, console; got {kinds}")
        return self

    @property
    def sources(self) -> list[str]:
        """The stream references this stdin reads, as a list."""
        if self.from_ is None:
            return []
        return [self.from_] if isinstance(self.from_, str) else list(self.from_)


class TemplateStep(_Model):
    """Render a template file with ``${VAR}`` interpolation."""

    src: Text
    """Template file."""
    dest: Text
    """Where to write the rendered file."""
    mode: Text | None = None
    """File mode in octal text, e.g. ``"0644"``."""


class EnsureStep(_Model):
    """A step run before the task starts: exactly one of mkdir, template."""

    mkdir: Text | None = None
    """Create this directory (and parents)."""
    template: TemplateStep | None = None
    """Render a template."""

    @model_validator(mode="after")
    def _exactly_one(self) -> EnsureStep:
        kinds = [k for k in ("mkdir", "template") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"an ensure step needs exactly one of mkdir, template; got {kinds}")
        return self


class Alarms(_Model):
    """When the state raises alarms for a task."""

    crash_loop: Annotated[Int, Field(ge=1)] = 3
    """Restarts within ``crash_loop_window`` that raise a crash-loop alarm."""
    crash_loop_window: Duration = 60.0
    """Window for ``crash_loop``."""
    stuck_starting: Duration = 60.0
    """A task still starting (not running, healthy or log-ready) after this raises an alarm."""


class Task(_Model):
    """A node of the graph: a command run somewhere, as a service or a job."""

    cmd: Command | None = None
    """What to run: a string for ``/bin/sh -c``, or an argv list executed as is."""
    kind: Literal["service", "job"] = "service"
    """``service``: expected to keep running; ``job``: expected to finish."""
    description: Text | None = None
    """Free text shown in the TUI."""
    cwd: Text | None = None
    """Working directory, relative to the project file (default: its directory)."""
    env: dict[Text, EnvValue] = Field(default_factory=dict)
    """Environment variables (values kept exactly as written)."""
    env_file: Text | list[Text] | None = None
    """Extra ``.env`` files for this task."""
    environment: Text | None = None
    """Name of an environment to run in (default: local)."""
    hosts: dict[Text, Text] | list[Text] | None = None
    """Fan out: a label selector (``{role: web}``) or a list of host names; one instance
    per matching host."""
    depends_on: dict[Name, Dependency] | list[Name] = Field(default_factory=dict)
    """Tasks this one needs, with conditions and rules (a list means ``started``)."""
    restart: RestartPolicy = Field(default_factory=RestartPolicy)
    """Restart policy (or just its name, ``restart: on-failure``)."""
    success_exit_codes: list[ExitCode] = Field(default_factory=list)
    """Exit codes that count as success besides 0, which always does (e.g. ``[130]`` for
    a program that ends with 130 on SIGINT); each 0-255."""
    health: HealthCheck | None = None
    """Readiness check: decides ``healthy`` for dependents."""
    liveness: HealthCheck | None = None
    """Liveness check: once it fails, the task is restarted by its policy."""
    ready_log: Text | None = None
    """A regular expression; the task is ``log_ready`` once a line matches."""
    stop: StopSpec = Field(default_factory=StopSpec)
    """How to stop the task."""
    ports: dict[Name, Port] = Field(default_factory=dict)
    """Named ports, usable as ``${ports.NAME}`` and checked for conflicts before start."""
    stdin: StdinSpec | None = None
    """Standard input (default: none, i.e. /dev/null)."""
    triggers: list[Name] = Field(default_factory=list)
    """Observers that (re-)run this task when they fire."""
    trigger_mode: Literal["auto", "manual"] = "auto"
    """``manual``: triggers only mark the task pending until someone fires it."""
    autostart: Bool = True
    """Start with ``devster up``; ``false`` waits for a trigger or a start command."""
    ensure: list[EnsureStep] = Field(default_factory=list)
    """Steps run before every start."""
    timeout: Duration | None = None
    """Jobs: kill and fail a run that takes longer."""
    mode: Literal["normal", "observe"] = "normal"
    """``observe``: read-only; stop, restart and stdin need confirmation in every client."""
    profiles: list[Name] = Field(default_factory=list)
    """Only run when one of these profiles is active (default: always)."""
    alarms: Alarms = Field(default_factory=Alarms)
    """Alarm thresholds."""

    @property
    def dependencies(self) -> dict[str, Dependency]:
        """``depends_on`` as a mapping, whichever form was written."""
        if isinstance(self.depends_on, list):
            return {name: Dependency() for name in self.depends_on}
        return dict(self.depends_on)

    @property
    def argv_or_shell(self) -> list[str]:
        """The argv to execute: ``['/bin/sh', '-c', cmd]`` for strings."""
        return [] if self.cmd is None else command_argv(self.cmd)


class LogSettings(_Model):
    """Output storage settings."""

    max_bytes: Size = 10 * 1024 * 1024
    """Size at which a task's log file is rotated."""
    backups: Annotated[Int, Field(ge=0)] = 3
    """Rotated files kept per task and stream."""
    memory_lines: Annotated[Int, Field(ge=100)] = 10000
    """Recent lines kept in memory per task and stream for the TUI and ``logs``."""


SECRET_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]*$"
"""What a secret name may look like (referenced as ``${secret:NAME}``)."""

SECRET_SOURCES = ("env", "file", "command", "prompt")


class Secret(_Model):
    """Where a secret's value comes from: exactly one of env, file, command, prompt.

    Values are read once at start-up, never written anywhere, and shown as
    ``[redacted:NAME]`` in output.
    """

    env: Text | None = None
    """An environment variable of the devster process."""
    file: Text | None = None
    """A file, relative to the project file; its content without one trailing newline
    (a warning when group or others may read it)."""
    command: Command | None = None
    """A command run once at start-up (``pass show db``); its stdout without one trailing
    newline.  It must exit 0."""
    prompt: Text | None = None
    """Asked once in the TUI with masked input; the text is the question.  Headless runs
    (``--no-tui``, ``run``, ``up -d``) fail instead of waiting."""
    timeout: Duration = 30.0
    """How long ``command`` may take."""
    description: Text | None = None
    """Free text (what the secret is for)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Secret:
        kinds = [k for k in SECRET_SOURCES if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"a secret needs exactly one of {', '.join(SECRET_SOURCES)}; got {kinds or 'none'}"
            )
        return self

    @property
    def source(self) -> str:
        """``env``, ``file``, ``command`` or ``prompt``."""
        for k in SECRET_SOURCES:
            if getattr(self, k) is not None:
                return k
        raise AssertionError("validated secret has no source")


class Project(_Model):
    """A devster project: the whole file."""

    version: Annotated[Int, Field(ge=1, le=1)] = 1
    """File format version; only ``1`` exists."""
    project: Text | None = None
    """Project name (default: the directory name)."""
    env_file: Text | list[Text] | None = None
    """``.env`` file(s) read for interpolation and every task's environment."""
    profiles: list[Name] = Field(default_factory=list)
    """Profiles active by default (``--profile`` adds more)."""
    state_dir: Text = ".devster"
    """Where the event log, output logs and process records live, relative to the project
    file; a file not named devster.yaml, devster.yml or devster.py defaults to
    ``.devster/FILE_NAME``."""
    logs: LogSettings = Field(default_factory=LogSettings)
    """Output storage settings."""
    environments: dict[Name, Environment] = Field(default_factory=dict)
    """Named environments (layer chains)."""
    hosts: dict[Name, Host] = Field(default_factory=dict)
    """Host inventory."""
    observers: dict[Name, Observer] = Field(default_factory=dict)
    """Named observers (triggers)."""
    tasks: dict[TaskName, Task] = Field(
        default_factory=dict,
        json_schema_extra={"propertyNames": {"pattern": TASK_NAME_PATTERN}},
    )
    """The tasks."""
    secrets: dict[Annotated[Text, Field(pattern=SECRET_NAME_PATTERN)], Secret] = Field(
        default_factory=dict
    )
    """Named secrets, used as ``${secret:NAME}`` in env values and ssh passphrases."""
    bus: Annotated[Text, Field(pattern=r"^nats://[^\s/]+(:\d+)?/?$")] | None = None
    """NATS JetStream server (``nats://HOST:PORT``) the engine publishes every event to."""

    @property
    def name(self) -> str:
        """The project name ('' when not set and not yet resolved by the loader)."""
        return self.project or ""
