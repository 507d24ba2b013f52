"""`devster --help` and `--version` stay cheap: no heavy package is imported on those paths."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("textual", "docker", "asyncssh", "pydantic", "ruamel", "watchfiles", "rich")

PROBE = """
import json, sys, io, contextlib
from devster_tui.cli import main
out = io.StringIO()
code = None
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def _probe(*argv: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("argv", [("--help",), ("--version",)])
def test_help_and_version_import_no_heavy_package(argv: tuple[str, ...]) -> None:
    result = _probe(*argv)
    assert result["code"] == 0
    modules = result["modules"]
    assert isinstance(modules, list)
    loaded = sorted(
        {m.split(".")[0] for m in modules if m.split(".")[0] in HEAVY},
    )
    assert loaded == [], f"`devster {' '.join(argv)}` imported {loaded}"


def test_version_prints_the_package_version() -> None:
    from devster_tui import __version__

    result = _probe("--version")
    assert result["out"] == f"devster {__version__}\n"


def test_help_lists_every_registered_command() -> None:
    from devster_tui.cli import COMMANDS

    result = _probe("--help")
    out = result["out"]
    assert isinstance(out, str)
    for name, _module, _help in COMMANDS:
        assert name in out, f"{name} missing from --help"


def test_python_dash_m_runs_the_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "devster_tui", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("devster ")


def test_no_command_module_imports_a_heavy_package_at_import_time() -> None:
    """Pins: a sub-command module importing pydantic/textual at module level.

    The parser imports only the chosen command's module, but every module must stay light so
    that its own ``--help`` and the client commands (``ps``, ``logs``) start fast.
    """
    code = (
        "import json, sys; import devster_tui.cli as c; c.build_parser(); "
        "print(json.dumps(sorted(sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    modules = json.loads(proc.stdout)
    loaded = sorted({m.split(".")[0] for m in modules if m.split(".")[0] in HEAVY})
    assert loaded == []


def test_top_level_help_imports_no_command_module() -> None:
    result = _probe("--help")
    modules = result["modules"]
    assert isinstance(modules, list)
    assert [m for m in modules if m.startswith("devster_tui.commands.")] == []
