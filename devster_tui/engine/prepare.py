"""Preparing one run of a task: the :class:`ProcessSpec` it is spawned with, and where its
output goes.

Why apart from the runner: what a run is given (its command and environment with
``${ports.NAME}`` resolved, its working directory, its ``ensure`` steps done, its ports
checked free) changes nothing in the task's lifecycle; a run that cannot be prepared is one
:class:`PrepareError` whose text is the ``task.failed`` reason, and the runner decides
nothing from it but "this run failed before its spawn".
"""

from __future__ import annotations

import asyncio
import signal as _signal
from collections.abc import Mapping, Sequence

from devster_tui.config.schema import Task
from devster_tui.config.shell import shell_argv
from devster_tui.engine.context import RunnerContext
from devster_tui.engine.ensure import EnsureError, run_ensure
from devster_tui.engine.interp import InterpolationError, substitute_ports
from devster_tui.executors.base import EofSink, OutputSink, ProcessSpec


class PrepareError(Exception):
    """A run could not be prepared; ``str(exc)`` is the ``task.failed`` reason."""


async def prepare_spec(
    name: str, task: Task, ctx: RunnerContext, env: Mapping[str, str], *, stdin_pipe: bool
) -> ProcessSpec:
    """Resolve the command, run the ``ensure`` steps and check the ports.

    Args:
        name: The task.
        task: Its configuration.
        ctx: The runners' shared context (root, port check, secret values).
        env: The task's complete environment (ports not yet substituted).
        stdin_pipe: Whether the process gets a stdin pipe.

    Returns:
        The spec of the run's process.

    Raises:
        PrepareError: when the command cannot be resolved, an ``ensure`` step fails or a
            declared port is in use.
    """
    try:
        ports = dict(task.ports)
        argv = task_argv(task, ports)
        resolved = {k: substitute_ports(v, ports) for k, v in env.items()}
    except InterpolationError as exc:
        raise PrepareError(f"cannot resolve the command: {exc}") from exc
    cwd = str((ctx.root / task.cwd) if task.cwd else ctx.root)
    if task.ensure:
        try:
            await asyncio.to_thread(run_ensure, task.ensure, ctx.root, resolved, ports)
        except EnsureError as exc:
            raise PrepareError(str(exc)) from exc
    if ports:
        conflicts = await asyncio.to_thread(ctx.check_ports, ports)
        if conflicts:
            raise PrepareError("; ".join(conflicts))
    return ProcessSpec(
        task=name,
        argv=argv,
        env=resolved,
        cwd=cwd,
        stdin="pipe" if stdin_pipe else "null",
        stop_signal=int(_signal.Signals[task.stop.signal]),
        stop_timeout=task.stop.timeout,
        secret_values=ctx.secret_values,
    )


def task_argv(task: Task, ports: Mapping[str, int]) -> list[str]:
    """The argv of ``task``'s command with ``${ports.NAME}`` resolved.

    Raises:
        InterpolationError: for an unknown port name.
    """
    cmd = task.cmd
    if cmd is None:
        return []  # only a docker build layer's task (config checks): the build is the job
    if isinstance(cmd, str):
        return shell_argv(substitute_ports(cmd, ports))
    return [substitute_ports(arg, ports) for arg in cmd]


def output_sinks(ctx: RunnerContext, name: str, run: int) -> tuple[OutputSink, EofSink]:
    """Where run ``run`` of task ``name`` sends its output: the output store, waking the
    output listeners after each chunk."""
    output, notify = ctx.output, ctx.on_output_activity

    def on_output(stream: str, chunk: bytes) -> None:
        output.append(name, stream, chunk, run)
        notify()

    def on_eof(stream: str) -> None:
        output.finish(name, stream)
        notify()

    return on_output, on_eof


def summary(argv: Sequence[str], limit: int = 200) -> str:
    """``argv`` joined for ``task.spawned`` (at most ``limit`` characters)."""
    text = " ".join(argv)
    return text if len(text) <= limit else text[: limit - 1] + "…"
