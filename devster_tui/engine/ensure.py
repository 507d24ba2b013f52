"""Pre-start ``ensure`` steps: create directories and render templates before a task spawns.

The steps are plain blocking file operations; the runner calls :func:`run_ensure` in a
worker thread so the event loop never waits on the disk.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from devster_tui.config.schema import EnsureStep
from devster_tui.engine.interp import InterpolationError, render_template


class EnsureError(Exception):
    """An ensure step failed; the message says which step and why."""


def run_ensure(
    steps: Sequence[EnsureStep],
    root: Path,
    variables: Mapping[str, str],
    ports: Mapping[str, int],
) -> list[str]:
    """Carry out ``steps`` in order.

    Args:
        steps: The task's ``ensure`` list.
        root: Directory that relative paths resolve against (the project file's).
        variables: Variables for templates (the task's environment).
        ports: The task's declared ports, for ``${ports.NAME}`` in templates.

    Returns:
        One short description per step done (``mkdir data``, ``template a -> b``).

    Raises:
        EnsureError: on the first step that fails.
    """
    done: list[str] = []
    for index, step in enumerate(steps):
        if step.mkdir is not None:
            target = root / step.mkdir
            try:
                target.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise EnsureError(f"ensure[{index}] mkdir {step.mkdir}: {exc.strerror}") from exc
            done.append(f"mkdir {step.mkdir}")
        elif step.template is not None:
            tpl = step.template
            src, dest = root / tpl.src, root / tpl.dest
            where = f"ensure[{index}] template {tpl.src}"
            try:
                text = src.read_text(encoding="utf-8")
            except OSError as exc:
                raise EnsureError(f"{where}: {exc.strerror}") from exc
            except UnicodeDecodeError as exc:
                raise EnsureError(f"{where}: not UTF-8 text ({exc.reason})") from exc
            try:
                rendered = render_template(text, variables, ports)
            except InterpolationError as exc:
                raise EnsureError(f"{where}: {exc}") from exc
            try:
                mode = int(tpl.mode, 8) if tpl.mode is not None else None
            except ValueError as exc:
                raise EnsureError(f"{where}: mode {tpl.mode!r} is not octal") from exc
            try:
                _write_atomically(dest, rendered, mode)
            except OSError as exc:
                raise EnsureError(f"{where} -> {tpl.dest}: {exc.strerror}") from exc
            done.append(f"template {tpl.src} -> {tpl.dest}")
    return done


def _write_atomically(dest: Path, text: str, mode: int | None) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode if mode is not None else 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
