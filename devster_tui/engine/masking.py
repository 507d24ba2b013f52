"""The one gate a task's resolved configuration passes before it leaves the engine.

Why: ``task.defined`` events carry each task's resolved config to every client (the TUI
detail view, the event log on disk, API clients).  Every such copy goes through
:func:`mask_config`, which deep-copies it so that no client shares a container with the
engine.  Secret values cannot be in it: the config keeps the ``${secret:NAME}`` references
(values are substituted only into a process's environment at spawn, see
:mod:`devster_tui.engine.secrets`), and the store redacts every event's data as well
(:mod:`devster_tui.state.redact`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devster_tui.config.schema import Task


def mask_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration as clients may see it.

    Args:
        config: A JSON-able configuration (``Task.model_dump(mode="json", ...)``).

    Returns:
        A new dict, deep-copied so that clients never share containers with the caller
        (tuples become lists); the values themselves are unchanged.
    """
    return {str(key): _copy(value) for key, value in config.items()}


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(item) for item in value]
    return value


def task_config(task: Task) -> dict[str, Any]:
    """A task's resolved configuration for ``task.defined``: what differs from the defaults,
    keys spelled as in the project file, passed through :func:`mask_config`."""
    return mask_config(task.model_dump(mode="json", by_alias=True, exclude_defaults=True))
