"""Runtime interpolation: ``${ports.NAME}`` in commands, environments and probes, and
``${VAR}`` templates for ``ensure`` steps.

The loader interpolates ``${VAR}`` in the whole file before validation but leaves
``${ports.NAME}`` (and ``${secret:NAME}``) alone; the engine resolves ports here, just
before it spawns, so a task's argv, env and health probe use the same declared numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_PORT_REF = re.compile(r"\$\{ports\.([A-Za-z0-9_-]+)\}")
_VAR_REF = re.compile(r"\$(?:\$|\{([^}:]+)(?:(:-|:\?)([^}]*))?\})")


class InterpolationError(ValueError):
    """A ``${...}`` reference cannot be resolved; the message names it."""


def substitute_ports(text: str, ports: Mapping[str, int]) -> str:
    """Replace every ``${ports.NAME}`` in ``text`` with the declared port number.

    Args:
        text: A command, an environment value or a probe target.
        ports: The task's declared ports.

    Returns:
        The text with port references replaced.

    Raises:
        InterpolationError: for a port name the task does not declare.
    """
    if "${ports." not in text:
        return text

    def _one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in ports:
            known = ", ".join(sorted(ports)) or "none"
            raise InterpolationError(f"${{ports.{name}}}: no port {name!r} (declared: {known})")
        return str(ports[name])

    return _PORT_REF.sub(_one, text)


def render_template(text: str, variables: Mapping[str, str], ports: Mapping[str, int]) -> str:
    """Render an ``ensure`` template: ``${VAR}``, ``${VAR:-default}``, ``${VAR:?msg}``,
    ``${ports.NAME}`` and ``$$`` (a literal ``$``); any other ``$`` stays as written.

    Args:
        text: The template's content.
        variables: The task's environment (project variables, env files, task env).
        ports: The task's declared ports.

    Returns:
        The rendered text.

    Raises:
        InterpolationError: for an unset variable without a default, or an unknown port.
    """

    def _one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name.startswith("ports."):
            return substitute_ports(match.group(0), ports)
        value = variables.get(name)
        if value is not None and (value != "" or op is None):
            return value
        if op == ":-":
            return arg or ""
        if op == ":?":
            raise InterpolationError(f"${{{name}}}: {arg or 'not set'}")
        raise InterpolationError(f"${{{name}}}: variable is not set (use ${{{name}:-default}})")

    return _VAR_REF.sub(_one, text)
