"""Python project files: run a ``devster.py`` that builds the model with the exported classes.

For users who need loops and conditions.  The file builds a :class:`Project` with the same
classes the YAML loader validates into (``from devster_tui import Project, Task, ...``) and
exposes it as a module-level ``project``, or a function ``def project(environ) -> Project``
(or without the argument).  Every failure,
a pydantic ``ValidationError`` or any other exception, becomes a :class:`ConfigError` carrying
the line of the user's file where it happened, found by walking the traceback.
"""

from __future__ import annotations

import inspect
import os
import runpy
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

from pydantic import ValidationError

from devster_tui.config.errors import ConfigError, ConfigErrors, KeyPath, SourceMap
from devster_tui.config.schema import Project

ENTRY_POINT = "project"
"""The module-level name a ``devster.py`` binds: a Project, or a function returning one
(called with the variables mapping when it takes an argument)."""


def _user_line(tb: TracebackType | None, file: Path) -> int:
    """The line of the deepest traceback frame that runs in ``file`` (0 if none does)."""
    target = os.path.realpath(file)
    line = 0
    for frame in traceback.extract_tb(tb):
        if frame.filename and os.path.realpath(frame.filename) == target:
            line = frame.lineno or 0
    return line


def _loc(loc: tuple[int | str, ...]) -> KeyPath:
    return tuple(part if isinstance(part, int) else str(part) for part in loc)


def _errors_from(exc: BaseException, file: Path, name: str) -> list[ConfigError]:
    """Turn an exception raised while running ``file`` into positioned errors."""
    if isinstance(exc, SyntaxError) and exc.filename and Path(exc.filename) == file:
        return [ConfigError(name, exc.lineno or 0, exc.offset or 0, (), f"syntax error: {exc.msg}")]
    line = _user_line(exc.__traceback__, file)
    if isinstance(exc, ValidationError):
        out = []
        for err in exc.errors(include_url=False):
            text = str(err["msg"]).removeprefix("Value error, ")
            message = f"{text} (building {exc.title})"
            out.append(ConfigError(name, line, 0, _loc(err["loc"]), message))
        return out
    if isinstance(exc, SystemExit):
        message = f"the file called exit({exc.code!r})"
    else:
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return [ConfigError(name, line, 0, (), message)]


def _forget_modules_under(directory: Path, before: set[str]) -> None:
    """Drop modules imported from ``directory`` during the run, so a reload sees edits."""
    root = os.path.realpath(directory)
    for mod_name in set(sys.modules) - before:
        origin = getattr(sys.modules.get(mod_name), "__file__", None)
        if isinstance(origin, str) and os.path.realpath(origin).startswith(root + os.sep):
            del sys.modules[mod_name]


def _takes_argument(function: Any) -> bool:
    """Whether ``function`` accepts one positional argument (``def project(environ)``)."""
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    return bool(positional)


def _run(file: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    directory = str(file.parent)
    before = set(sys.modules)
    sys.path.insert(0, directory)
    try:
        return runpy.run_path(
            str(file),
            init_globals={"environ": MappingProxyType(dict(environ))},
            run_name="__devster__",
        )
    finally:
        try:
            sys.path.remove(directory)
        except ValueError:
            pass
        _forget_modules_under(file.parent, before)


def load_python_project(
    file: Path, environ: Mapping[str, str] | None = None
) -> tuple[Project, SourceMap | None]:
    """Run a ``devster.py`` and return the project it builds.

    The file runs with its own directory on ``sys.path`` (so it can import helpers next to
    it).  It reads variables from ``environ``: the argument of ``def project(environ)``, or
    the same read-only mapping as a global of the file; these are the variables that YAML
    interpolation would see.

    Args:
        file: The Python project file.
        environ: Variables for the file (default: ``os.environ``).

    Returns:
        The validated project and, since Python files have no YAML positions, no source map.

    Raises:
        ConfigErrors: when the file fails to run, fails validation or exposes no project;
            each error carries the file's line where it happened (column 0).
    """
    name = str(file)
    path = Path(file).resolve()
    env = os.environ if environ is None else environ
    try:
        namespace = _run(path, env)
        value = namespace.get(ENTRY_POINT)
        if callable(value) and not isinstance(value, Project):
            value = value(MappingProxyType(dict(env))) if _takes_argument(value) else value()
        if isinstance(value, Mapping):
            value = Project.model_validate(dict(value))
    except ConfigErrors:
        raise
    except (Exception, SystemExit) as exc:
        raise ConfigErrors(_errors_from(exc, path, name)) from None
    if value is None:
        raise ConfigErrors(
            [
                ConfigError(
                    name,
                    0,
                    0,
                    (),
                    f"defines no {ENTRY_POINT!r}: assign a devster_tui.Project to a "
                    f"module-level variable named {ENTRY_POINT!r}, or define "
                    f"'def {ENTRY_POINT}() -> Project'",
                )
            ]
        )
    if not isinstance(value, Project):
        raise ConfigErrors(
            [
                ConfigError(
                    name,
                    0,
                    0,
                    (),
                    f"{ENTRY_POINT!r} must be a devster_tui.Project, got {type(value).__name__}",
                )
            ]
        )
    return value, None
