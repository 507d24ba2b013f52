"""Runtime interpolation: ``${ports.NAME}`` in commands, environments and probes, and
``ensure`` templates rendered with the configuration's own ``${...}`` grammar.

The loader interpolates ``${VAR}`` in the whole file before validation but leaves
``${ports.NAME}`` (and ``${secret:NAME}``) alone; the engine resolves ports here, just
before it spawns, so a task's argv, env and health probe use the same declared numbers.
Those texts were interpolated already, so :func:`substitute_ports` replaces port references
only (a ``$`` the loader unescaped must stay as it is).

Templates are read at start and never went through the loader: :func:`render_template`
runs :func:`devster_tui.config.interpolate.interpolate` over them, with a resolver for
``${ports.NAME}``, so every form a configuration value accepts works in a template too and
a bad reference fails with the loader's message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from devster_tui.config.interpolate import InterpolationError, interpolate

__all__ = ["InterpolationError", "render_template", "substitute_ports"]

_PORT_REF = re.compile(r"\$\{ports\.([A-Za-z0-9_-]+)\}")
_PORTS = "ports."


def _port(name: str, ports: Mapping[str, int]) -> str:
    """The declared number of port ``name``, as text.

    Raises:
        ValueError: naming the port and the declared ones when ``name`` is not declared.
    """
    if name not in ports:
        known = ", ".join(sorted(ports)) or "none"
        raise ValueError(f"${{ports.{name}}}: no port {name!r} (declared: {known})")
    return str(ports[name])


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
        try:
            return _port(match.group(1), ports)
        except ValueError as exc:
            raise InterpolationError(str(exc), match.start()) from None

    return _PORT_REF.sub(_one, text)


def render_template(text: str, variables: Mapping[str, str], ports: Mapping[str, int]) -> str:
    """Render an ``ensure`` template with the configuration's interpolation grammar.

    ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?message}``,
    ``${VAR?message}``, ``${VAR:+other}``, ``${VAR+other}`` and ``$$`` work as in the
    project file, plus ``${ports.NAME}``; ``${secret:NAME}`` stays as written, and any other
    ``$`` (``$HOME``, ``$(date)``) too.

    Args:
        text: The template's content.
        variables: The task's environment (project variables, env files, task env).
        ports: The task's declared ports.

    Returns:
        The rendered text.

    Raises:
        InterpolationError: for an unset variable without a default, a ``:?`` failure, bad
            ``${...}`` syntax or an unknown port; its message is the loader's.
    """

    def engine(body: str) -> str | None:
        if body.startswith(_PORTS):
            return _port(body[len(_PORTS) :], ports)
        return None  # ${secret:NAME} stays as written: secrets go to env values only

    return interpolate(text, variables, engine=engine)
