"""Packaging: the wheel ships every package, the styles and the themes, and finds them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PIP_WHEEL = (sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q")
"""The build command of the issue: ``pip wheel --no-deps --no-build-isolation``."""
THEMES = sorted(p.name for p in (REPO / "themes").iterdir() if p.suffix in (".toml", ".json"))


def source_packages() -> set[str]:
    """Dotted names of every folder under devster_tui/ that holds an ``__init__.py``."""
    return {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "devster_tui").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }


def setuptools_config() -> dict[str, object]:
    with (REPO / "pyproject.toml").open("rb") as f:
        config: dict[str, object] = tomllib.load(f)["tool"]["setuptools"]
    return config


def test_pyproject_left_a_package_out_of_the_wheel() -> None:
    listed = setuptools_config()["packages"]
    assert isinstance(listed, list)
    missing = source_packages() - set(listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_themes_folder_was_not_mapped_into_the_package() -> None:
    config = setuptools_config()
    assert config["package-dir"] == {"devster_tui.themes": "themes"}
    assert "devster_tui.themes" in config["packages"]  # type: ignore[operator]
    assert THEMES, "the repository ships theme files"


def build_wheel(tmp_path: Path) -> tuple[Path, Path]:
    """Build the wheel from a copy of the project (the checkout stays clean, xdist-safe).

    Returns:
        ``(wheel, copy)``.
    """
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", ".devster")
    for name in ("devster_tui", "themes"):
        shutil.copytree(REPO / name, src / name, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    dist = tmp_path / "dist"
    done = subprocess.run(
        [*PIP_WHEEL, "-w", str(dist), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    wheels = list(dist.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0], src


@pytest.mark.slow
def test_wheel_shipped_without_themes_styles_or_modules(tmp_path: Path) -> None:
    wheel, src = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        site = tmp_path / "site"
        zf.extractall(site)
    for theme in THEMES:
        assert f"devster_tui/themes/{theme}" in names
    assert "devster_tui/tui/styles/cockpit.tcss" in names
    assert "devster_tui/py.typed" in names
    modules = {
        "/".join(p.relative_to(src).parts)
        for p in (src / "devster_tui").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert not modules - names, f"modules missing from the wheel: {sorted(modules - names)}"

    # Installed (the wheel unpacked on sys.path, run away from the checkout), the cockpit
    # loads the themes from the package through importlib.resources.
    probe = (
        "import devster_tui, pathlib\n"
        "from devster_tui.tui.themes import builtin_theme_dir, load_themes\n"
        "where = builtin_theme_dir()\n"
        "loaded, failed = load_themes([where])\n"
        "print(pathlib.Path(devster_tui.__file__).parent)\n"
        "print(where)\n"
        "print(' '.join(sorted(t.name for t in loaded)), len(failed))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    package, where, themes = done.stdout.splitlines()
    assert Path(package) == site / "devster_tui", "the unpacked wheel was imported"
    assert Path(where) == site / "devster_tui" / "themes"
    assert themes.split()[:-1] == ["devster-dark", "devster-light"]
    assert themes.split()[-1] == "0"
