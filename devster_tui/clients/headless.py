"""The headless printer: ``task | line`` for every output line, short lines for lifecycle events.

Why a client and not part of the supervisor: the supervisor never formats text.  This
printer subscribes to the store (for status lines) and pulls new output lines from the
output store with one cursor per task, woken by a cheap "output arrived" signal, and writes
them in batches from a worker thread, so a slow terminal or pipe never stalls the engine's
loop.  Colours are used only when the destination is a terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Sequence
from itertools import groupby
from typing import BinaryIO

from devster_tui.state.events import Event, T
from devster_tui.state.model import EngineState
from devster_tui.state.output import OutputStore
from devster_tui.state.store import Store

ENGINE_NAME = "devster"
"""Prefix of lines about the engine itself."""

_COLOURS = (36, 33, 32, 35, 34, 96, 93, 92, 95, 94)
_RESET = b"\x1b[0m"
_BATCH = 20_000
"""Lines read from the output store per read call."""


def _emit(parts: list[bytes], prefix: bytes | None, lines: list[bytes]) -> None:
    """Append ``prefix + line + newline`` for each line; markers (no prefix) are skipped."""
    if prefix is None or not lines:
        return
    parts.append(prefix)
    parts.append((b"\n" + prefix).join(lines))
    parts.append(b"\n")


def describe(event: Event) -> str | None:
    """A short human line for a lifecycle event, or None for events not worth a line.

    Args:
        event: A store event.

    Returns:
        ``started (pid 123)``, ``exited 1``, ``restarting in 2s (attempt 1)``, ``failed: ...``.
    """
    data = event.data
    match event.type:
        case T.TASK_WAITING:
            return str(data.get("reason") or "waiting")
        case T.TASK_BLOCKED:
            return f"blocked: {data.get('reason', '')}"
        case T.TASK_SPAWNED:
            run = data.get("run", 1)
            suffix = f", run {run}" if isinstance(run, int) and run > 1 else ""
            return f"started (pid {data.get('pid')}{suffix})"
        case T.TASK_SPAWN_FAILED:
            return f"failed to start: {data.get('error', '')}"
        case T.TASK_LOG_READY:
            return "ready"
        case T.TASK_HEALTH:
            healthy = bool(data.get("healthy"))
            if data.get("probe") == "liveness":
                return None if healthy else f"liveness check failed: {data.get('detail', '')}"
            return "healthy" if healthy else f"unhealthy: {data.get('detail', '')}"
        case T.TASK_STOPPING:
            if data.get("detail"):
                return f"{data.get('detail')} ({data.get('signal', '')})"
            return f"stopping ({data.get('reason', '')}, {data.get('signal', '')})"
        case T.TASK_EXITED:
            signal = data.get("signal")
            text = f"killed by {signal}" if signal else f"exited {data.get('code')}"
            duration = data.get("duration")
            if isinstance(duration, int | float):
                text += f" after {_seconds(float(duration))}"
            return text
        case T.TASK_BACKOFF:
            delay = data.get("delay", 0)
            delay_s = _seconds(float(delay)) if isinstance(delay, int | float) else "?"
            return f"restarting in {delay_s} (attempt {data.get('attempt')})"
        case T.TASK_FAILED:
            last = data.get("last_exit")
            return f"failed: {data.get('reason', '')}" + (f" (last: {last})" if last else "")
        case T.TASK_SUCCEEDED:
            return "succeeded"
        case T.TASK_STOPPED:
            return "stopped"
        case T.TASK_ALARM:
            if data.get("active"):
                return f"alarm {data.get('alarm')}: {data.get('detail', '')}"
            return None
        case T.ORPHAN_KILLED:
            task = data.get("task") or event.task  # the task is the envelope's
            return f"ended leftover process {data.get('pid')} of task {task}"
        case T.WARNING:
            return f"warning: {data.get('message', '')}"
        case T.ENGINE_STOPPING:
            return "stopping everything" + (" now (kill)" if data.get("force") else "")
    return None


def _seconds(value: float) -> str:
    if value >= 10:
        return f"{value:.0f}s"
    if value >= 1:
        return f"{value:.1f}s"
    return f"{value * 1000:.0f}ms"


class HeadlessPrinter:
    """Prints a running engine's output and lifecycle to a binary stream."""

    def __init__(
        self,
        store: Store,
        output: OutputStore,
        out: BinaryIO,
        *,
        tasks: Sequence[str],
        color: bool,
        on_activity: Callable[[Callable[[], None]], Callable[[], None]] | None = None,
    ) -> None:
        """Prepare a printer; :meth:`run` prints until :meth:`aclose`.

        Args:
            store: The engine's store (status lines).
            output: The engine's output store (lines).
            out: Where to write (``sys.stdout.buffer``).
            tasks: The task names, in the order to print them.
            color: Colour task names (only when ``out`` is a terminal).
            on_activity: Registers a callback run after each output chunk (the engine's
                ``on_output_activity``); without it the printer polls every 50 ms.
        """
        self._store = store
        self._output = output
        self._out = out
        self._color = color
        self._tasks = list(tasks)
        width = max((len(n) for n in [*self._tasks, ENGINE_NAME]), default=len(ENGINE_NAME))
        self._width = width
        self._prefix: dict[tuple[str, str], bytes] = {}
        for index, name in enumerate([*self._tasks, ENGINE_NAME]):
            colour = _COLOURS[index % len(_COLOURS)]
            for mark in ("|", "!", "*"):
                label = f"{name:<{width}} {mark} ".encode()
                if color:
                    tint = 31 if mark == "!" else colour
                    style = b"1;" if mark == "*" else b""
                    label = f"\x1b[{style.decode()}{tint}m".encode() + label + _RESET
                self._prefix[(name, mark)] = label
        self._cursor = dict.fromkeys(self._tasks, 0)
        self._pending: list[tuple[str, int, str]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._broken = False
        self._polling = on_activity is None
        self._remove: list[Callable[[], None]] = [store.subscribe(self._on_event)]
        if on_activity is not None:
            self._remove.append(on_activity(self._wake.set))

    # ------------------------------------------------------------------ feeding

    def _on_event(self, event: Event, _state: EngineState) -> None:
        text = describe(event)
        if text is None:
            return
        task = event.task if event.task in self._cursor else None
        upto = self._output.end(task, "both") if task is not None else 0
        self._pending.append((task or ENGINE_NAME, upto, text))
        self._wake.set()

    def _lines(self, task: str, upto: int, parts: list[bytes]) -> None:
        cursor = self._cursor[task]
        if cursor >= upto:
            return
        output = self._output
        first = output.first(task, "both")
        if cursor < first:
            skipped = first - cursor
            parts.append(self._prefix[(task, "*")])
            parts.append(f"... {skipped} lines not shown (they are in the log)\n".encode())
            cursor = first
        prefixes = {"stdout": self._prefix[(task, "|")], "stderr": self._prefix[(task, "!")]}
        while cursor < upto:
            start, datas, tags = output.read_raw(task, "both", cursor, min(_BATCH, upto - cursor))
            if not datas:
                break
            # Bulk copy: consecutive lines of one stream are joined in C with the prefix as
            # separator; no per-line Python work on the common single-stream path.
            if tags.count(tags[0]) == len(tags):
                _emit(parts, prefixes.get(tags[0]), datas)
            else:
                i = 0
                for tag, group in groupby(tags):
                    n = sum(1 for _ in group)
                    _emit(parts, prefixes.get(tag), datas[i : i + n])
                    i += n
            cursor = start + len(datas)
        self._cursor[task] = cursor

    def _collect(self) -> bytes:
        parts: list[bytes] = []
        pending, self._pending = self._pending, []
        for task, upto, text in pending:
            if task in self._cursor:
                self._lines(task, upto, parts)
            parts.append(self._prefix[(task, "*")])
            parts.append(text.encode("utf-8", "replace"))
            parts.append(b"\n")
        for task in self._tasks:
            self._lines(task, self._output.end(task, "both"), parts)
        return b"".join(parts)

    def _write(self, data: bytes) -> None:
        if self._broken:
            return
        try:
            self._out.write(data)
            self._out.flush()
        except OSError:  # a reader gone (EPIPE) or a terminal closed (EIO): stop printing
            self._broken = True
            # What stays buffered must not fail the interpreter's flush at exit (status 120).
            with contextlib.suppress(OSError, ValueError):
                fd = self._out.fileno()
                null = os.open(os.devnull, os.O_WRONLY)
                try:
                    os.dup2(null, fd)
                finally:
                    os.close(null)
                self._out.flush()

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        """Print until :meth:`aclose`; batches whatever arrived while the last write ran."""
        loop = asyncio.get_running_loop()
        while not self._closing:
            if self._polling:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.05)
            else:
                await self._wake.wait()
            self._wake.clear()
            data = self._collect()
            if data:
                await loop.run_in_executor(None, self._write, data)

    async def aclose(self) -> None:
        """Print everything still pending and stop (call after the engine has stopped)."""
        self._closing = True
        self._wake.set()
        for remove in self._remove:
            remove()
        self._remove.clear()
        data = self._collect()
        if data:
            await asyncio.get_running_loop().run_in_executor(None, self._write, data)
