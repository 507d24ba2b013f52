"""Layers and host fan-out for the engine: which executor runs each task, and ``task@host``.

Why separate from the supervisor: the supervisor owns lifecycles; this module only decides
*where* each task runs.  :func:`expand_hosts` turns a task with a ``hosts`` selector into
one instance per matching host (``task@host``, its own state and output), and
:class:`LayerRouter` is the one executor the runners see: it hands each spawn (the task's
process, its health probes ``task:health`` and stop command ``task:stop``) to the executor
of the task's layer chain.  Remote tasks get only their declared environment (never this
machine's whole ``os.environ``), sent as frames (see :mod:`devster_tui.executors.chain`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from devster_tui.config.schema import Host, Layer, Project, Task
from devster_tui.executors.base import EofSink, Executor, OutputSink, Process, ProcessSpec
from devster_tui.executors.chain import NoticeSink

HOST_SEPARATOR = "@"
"""Joins a task name and a host name in a fan-out instance's name."""


def matching_hosts(task: Task, hosts: Mapping[str, Host]) -> list[str]:
    """The inventory hosts a task fans out over, in inventory order.

    Args:
        task: The task (its ``hosts``: a label selector or a list of host names).
        hosts: The inventory.
    """
    selector = task.hosts
    if selector is None:
        return []
    if isinstance(selector, list):
        return [name for name in hosts if name in selector]
    return [
        name
        for name, host in hosts.items()
        if all(host.labels.get(k) == v for k, v in selector.items())
    ]


def instance_layers(project: Project, task: Task, host: Host | None) -> list[Layer]:
    """The layers of a task (or of its instance on ``host``), outermost first.

    A host instance runs through the host's ssh hop, then the host's environment, then the
    task's own environment.
    """
    layers: list[Layer] = []
    if host is not None:
        layers.append(Layer(ssh=host.ssh))
        if host.environment is not None and host.environment in project.environments:
            layers.extend(project.environments[host.environment].layers)
    if task.environment is not None and task.environment in project.environments:
        layers.extend(project.environments[task.environment].layers)
    return layers


def expand_hosts(project: Project) -> tuple[Project, dict[str, str]]:
    """Replace each fanned-out task by one ``task@host`` instance per matching host.

    Dependencies on a fanned-out task become dependencies on all of its instances.

    Returns:
        The project with instances, and instance name -> host name.
    """
    instances: dict[str, list[str]] = {}
    host_of: dict[str, str] = {}
    for name, task in project.tasks.items():
        if task.hosts is not None:
            instances[name] = [
                f"{name}{HOST_SEPARATOR}{h}" for h in matching_hosts(task, project.hosts)
            ]
    if not instances:
        return project, {}
    tasks: dict[str, Task] = {}
    for name, task in project.tasks.items():
        deps = task.dependencies
        if any(d in instances for d in deps):
            new_deps = {}
            for dep, spec in deps.items():
                for target in instances.get(dep, [dep]):
                    new_deps[target] = spec
            task = task.model_copy(update={"depends_on": new_deps})
        if name in instances:
            for instance in instances[name]:
                host_of[instance] = instance.partition(HOST_SEPARATOR)[2]
                tasks[instance] = task
        else:
            tasks[name] = task
    return project.model_copy(update={"tasks": tasks}), host_of


def remote_env(
    full: Mapping[str, str], task: Task, project: Project, variables: Mapping[str, str]
) -> dict[str, str]:
    """The part of a task's environment that travels to a remote host.

    Args:
        full: The task's complete local environment (``os.environ`` merged in).
        task: The task.
        project: The project (for the environment's ``env``).
        variables: Variables from the project's ``.env`` files.
    """
    keys = set(variables) | set(task.env)
    if task.environment is not None and task.environment in project.environments:
        keys |= set(project.environments[task.environment].env)
    return {k: v for k, v in full.items() if k in keys}


class LayerRouter:
    """The engine's executor: each task's spawns go to its own layer chain's executor."""

    def __init__(self, local: Executor) -> None:
        """Route to ``local`` unless a task has its own executor."""
        self.local = local
        """The local executor."""
        self.routes: dict[str, Executor] = {}
        """Task name -> executor of its layers."""
        self.env_filters: dict[str, Callable[[Mapping[str, str]], dict[str, str]]] = {}
        """Task name -> what of the environment a remote task gets."""
        self.closers: list[Callable[[], Awaitable[None]]] = []
        """Awaited by :meth:`aclose` after the routes are closed (the shared ssh pool)."""
        self._closed = False

    async def spawn(self, spec: ProcessSpec, on_output: OutputSink, on_eof: EofSink) -> Process:
        """Start ``spec`` through its task's layers."""
        name = spec.task.partition(":")[0]
        executor = self.routes.get(name)
        if executor is None:
            return await self.local.spawn(spec, on_output, on_eof)
        env_filter = self.env_filters.get(name)
        if env_filter is not None:
            spec = replace(spec, env=env_filter(spec.env))
        return await executor.spawn(spec, on_output, on_eof)

    async def aclose(self) -> None:
        """Close every route's executor, then the shared connections (idempotent).

        The local executor is not closed: it belongs to whoever made it (the engine closes
        its own; an executor handed to the engine is closed by the one who handed it).
        """
        if self._closed:
            return
        self._closed = True
        for executor in dict.fromkeys(self.routes.values()):
            if executor is not self.local:
                await executor.aclose()
        for closer in self.closers:
            await closer()


def build_router(
    local: Executor,
    project: Project,
    tasks: Mapping[str, Task],
    host_of: Mapping[str, str],
    variables: Mapping[str, str],
    root: Path,
    notice: NoticeSink,
) -> LayerRouter:
    """The router for ``tasks``: one executor per task that runs anywhere but locally.

    Raises:
        ValueError: for a layer chain that cannot be composed.
    """
    from devster_tui.executors.layered import (
        ResumingExecutor,
        build_executor,
        has_ssh,
        uses_layers,
    )

    router = LayerRouter(local)
    pool: Any = None
    project_name = project.name or root.name
    for name, task in tasks.items():
        host = project.hosts.get(host_of[name]) if name in host_of else None
        layers = instance_layers(project, task, host)
        if not uses_layers(layers):
            continue
        if pool is None and has_ssh(layers):
            from devster_tui.executors.ssh import SshPool

            def resolve(jump: str) -> Any:
                found = project.hosts.get(jump)
                return None if found is None else found.ssh

            pool = SshPool(notice=notice, resolve=resolve)
            router.closers.append(pool.aclose)
        executor = build_executor(
            layers, local=local, pool=pool, project=project_name, root=root, notice=notice
        )
        ssh_layers = [layer.ssh for layer in layers if layer.ssh is not None]
        first = next(layer for layer in layers if layer.local is None)
        docker_exec = (
            first.docker is not None and first.docker.image is None and first.docker.build is None
        )
        if task.kind == "service" and (
            (ssh_layers and all(s.reconnect for s in ssh_layers)) or docker_exec
        ):
            executor = ResumingExecutor(executor, notice=notice)
        router.routes[name] = executor

        def env_filter(full: Mapping[str, str], task: Task = task) -> dict[str, str]:
            return remote_env(full, task, project, variables)

        router.env_filters[name] = env_filter
    return router
