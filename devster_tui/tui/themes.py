"""Cockpit themes: data files (TOML or JSON) turned into Textual themes, plus status glyphs.

Themes are data, not code: ``themes/`` beside the package holds devster-dark and
devster-light, and ``~/.config/devster/themes`` (``$XDG_CONFIG_HOME``) holds the user's own.
Loading returns ``(loaded, failed)`` and never raises, so a broken theme file is reported in a
notification and skipped.  Status colours are theme variables (``$status-running`` ...);
themes that lack them (Textual's built-ins) fall back to the base colours.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rich.style import Style
from textual.color import Color, ColorParseError
from textual.theme import Theme

from devster_tui.state.model import Status

DEFAULT_THEME = "devster-dark"
"""Theme used when none is asked for."""

BASE_COLORS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "success",
    "warning",
    "error",
)
"""Colour keys a theme file may set in ``[colors]``."""

STATUS_GLYPHS: Mapping[Status, str] = {
    Status.DEFINED: "○",
    Status.WAITING: "…",
    Status.GATED: "‖",
    Status.PENDING: "◷",
    Status.STARTING: "◔",
    Status.RUNNING: "●",
    Status.HEALTHY: "♥",
    Status.UNHEALTHY: "♡",
    Status.STOPPING: "◑",
    Status.BACKOFF: "↻",
    Status.SUCCEEDED: "✔",
    Status.EXITED: "◌",
    Status.FAILED: "✖",
    Status.BLOCKED: "⊘",
    Status.STOPPED: "■",
}
"""One glyph per status; colour comes from the theme."""

STATUS_FALLBACK: Mapping[Status, str] = {
    Status.DEFINED: "foreground-muted",
    Status.WAITING: "secondary",
    Status.GATED: "accent",
    Status.PENDING: "accent",
    Status.STARTING: "primary",
    Status.RUNNING: "success",
    Status.HEALTHY: "success",
    Status.UNHEALTHY: "warning",
    Status.STOPPING: "warning",
    Status.BACKOFF: "warning",
    Status.SUCCEEDED: "success",
    Status.EXITED: "foreground-muted",
    Status.FAILED: "error",
    Status.BLOCKED: "error",
    Status.STOPPED: "foreground-muted",
}
"""Base theme variable used for a status when the theme has no ``status-*`` variable."""


@dataclass(frozen=True, slots=True)
class ThemeFailure:
    """A theme file that could not be loaded."""

    path: Path
    """The file."""
    reason: str
    """Why (parse error, unknown key, bad colour ...)."""


def builtin_theme_dir() -> Path:
    """The themes shipped with devster.

    An installed devster has them as package data, ``devster_tui/themes`` (the repository's
    ``themes/`` folder mapped into the package by ``pyproject.toml``), found through
    :mod:`importlib.resources`; a source checkout or an editable install reads the
    repository's ``themes/`` folder itself.
    """
    packaged = resources.files("devster_tui") / "themes"
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "themes"


def user_theme_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user's theme folder: ``$XDG_CONFIG_HOME/devster/themes`` or ``~/.config/...``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "devster" / "themes"


def default_theme_dirs() -> list[Path]:
    """Built-in themes first, then the user's (a user theme of the same name wins)."""
    return [builtin_theme_dir(), user_theme_dir()]


def _color(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: a colour must be text like '#RRGGBB', got {value!r}")
    try:
        Color.parse(value)
    except ColorParseError:
        raise ValueError(f"{where}: not a colour: {value!r}") from None
    return value


def theme_from_data(data: Mapping[str, Any], default_name: str) -> Theme:
    """Build a Textual theme from parsed theme-file data.

    Args:
        data: The parsed file: ``name``, ``dark``, ``[colors]``, ``[status]``,
            ``[variables]``.
        default_name: Name used when the file has none (its stem).

    Raises:
        ValueError: for unknown keys, a missing primary colour or an invalid colour.
    """
    unknown = set(data) - {"name", "dark", "colors", "status", "variables"}
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise ValueError("name must be non-empty text")
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ValueError("dark must be true or false")
    colors = data.get("colors", {})
    status = data.get("status", {})
    extra = data.get("variables", {})
    for section, value in (("colors", colors), ("status", status), ("variables", extra)):
        if not isinstance(value, dict):
            raise ValueError(f"[{section}] must be a table")
    bad = set(colors) - set(BASE_COLORS)
    if bad:
        raise ValueError(f"[colors]: unknown keys: {', '.join(sorted(bad))}")
    if "primary" not in colors:
        raise ValueError("[colors] needs at least 'primary'")
    known_status = {s.value for s in Status}
    bad = set(status) - known_status
    if bad:
        raise ValueError(f"[status]: unknown statuses: {', '.join(sorted(bad))}")
    base = {key: _color(value, f"colors.{key}") for key, value in colors.items()}
    variables = {f"status-{key}": _color(v, f"status.{key}") for key, v in status.items()}
    for key, value in extra.items():
        if not isinstance(value, str):
            raise ValueError(f"variables.{key}: must be text")
        variables[str(key)] = value
    return Theme(
        name=name,
        primary=base["primary"],
        secondary=base.get("secondary"),
        accent=base.get("accent"),
        foreground=base.get("foreground"),
        background=base.get("background"),
        surface=base.get("surface"),
        panel=base.get("panel"),
        boost=base.get("boost"),
        success=base.get("success"),
        warning=base.get("warning"),
        error=base.get("error"),
        dark=dark,
        variables=variables,
    )


def load_theme_file(path: Path) -> Theme:
    """Load one ``.toml`` or ``.json`` theme file.

    Raises:
        ValueError: when the file cannot be read or is not a valid theme.
    """
    try:
        raw = path.read_bytes()
        if path.suffix == ".json":
            data = json.loads(raw)
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(data, dict):
        raise ValueError("a theme file must hold a table/object")
    return theme_from_data(data, path.stem)


def load_themes(dirs: Iterable[Path]) -> tuple[list[Theme], list[ThemeFailure]]:
    """Load every theme file from ``dirs`` (missing folders are skipped silently).

    Returns:
        ``(loaded, failed)``: themes in load order, and the files that were skipped with
        the reason.  Never raises.
    """
    loaded: list[Theme] = []
    failed: list[ThemeFailure] = []
    for directory in dirs:
        try:
            files = sorted(
                p for p in directory.iterdir() if p.suffix in (".toml", ".json") and p.is_file()
            )
        except OSError:
            continue
        for path in files:
            try:
                loaded.append(load_theme_file(path))
            except ValueError as exc:
                failed.append(ThemeFailure(path, str(exc)))
    return loaded, failed


def resolve_color(variables: Mapping[str, str], name: str, default: str = "#808080") -> str:
    """A theme variable as opaque ``#rrggbb`` (alpha blended over the background)."""
    value = variables.get(name)
    if value is None:
        return default
    try:
        color = Color.parse(value)
        if color.a < 1.0:
            background = Color.parse(variables.get("background", "#000000"))
            color = background.blend(color, color.a).with_alpha(1.0)
    except ColorParseError:
        return default
    return color.hex6


def status_colors(variables: Mapping[str, str]) -> dict[Status, str]:
    """The colour of every status under the theme whose CSS variables are ``variables``."""
    result: dict[Status, str] = {}
    for status in Status:
        name = f"status-{status.value}"
        if name in variables:
            result[status] = resolve_color(variables, name)
        else:
            result[status] = resolve_color(variables, STATUS_FALLBACK[status])
    return result


def status_styles(variables: Mapping[str, str]) -> dict[Status, Style]:
    """Rich styles (foreground colour) for every status."""
    return {status: Style(color=color) for status, color in status_colors(variables).items()}
