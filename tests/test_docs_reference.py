"""docs/configuration.md documents every key of every model, in that model's own section."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from devster_tui.config.loader import load_project
from devster_tui.config.schema import Project

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_ROW_KEY = re.compile(r"^\|\s*`([^`]+)`\s*\|")


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    """Every pydantic model reachable from ``root`` through field annotations, in BFS order."""
    seen: list[type[BaseModel]] = []
    queue: list[Any] = [root]
    while queue:
        tp = queue.pop(0)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp in seen:
                continue
            seen.append(tp)
            queue.extend(info.annotation for info in tp.model_fields.values())
            continue
        origin = typing.get_origin(tp)
        if origin is not None or isinstance(tp, types.UnionType):
            queue.extend(typing.get_args(tp))
    return seen


def _sections(text: str) -> dict[str, list[str]]:
    """Model name -> the lines of the section whose heading starts with `` `Model` ``."""
    lines = text.splitlines()
    found: dict[str, list[str]] = {}
    in_code = False
    headings: list[tuple[int, int, str]] = []
    for index, line in enumerate(lines):
        if line.startswith("```"):
            in_code = not in_code
        match = None if in_code else _HEADING.match(line)
        if match:
            headings.append((index, len(match.group(1)), match.group(2)))
    for pos, (index, level, title) in enumerate(headings):
        model = re.match(r"`(\w+)`", title)
        if model is None:
            continue
        end = len(lines)
        for later_index, later_level, _ in headings[pos + 1 :]:
            if later_level <= level:
                end = later_index
                break
        found[model.group(1)] = lines[index + 1 : end]
    return found


def _documented_keys(section: list[str]) -> list[str]:
    return [m.group(1) for line in section if (m := _ROW_KEY.match(line))]


def _problems(text: str) -> list[str]:
    """Every model without a section, field without a row in it, and row without a field."""
    sections = _sections(text)
    problems: list[str] = []
    for model in _models(Project):
        name = model.__name__
        if name not in sections:
            problems.append(f"{name}: no section whose heading starts with `{name}`")
            continue
        keys = [info.alias or field for field, info in model.model_fields.items()]
        rows = _documented_keys(sections[name])
        problems += [f"{name}.{key}: not in the {name} section" for key in keys if key not in rows]
        problems += [f"{name}: row for unknown key {row!r}" for row in rows if row not in keys]
    return problems


def test_every_field_of_every_model_is_documented_in_its_own_section() -> None:
    assert _problems(DOC.read_text(encoding="utf-8")) == []


def test_the_walk_reaches_every_model_of_the_schema() -> None:
    names = {m.__name__ for m in _models(Project)}
    assert {"Task", "Dependency", "Backoff", "DockerBuild", "LogObserver", "TemplateStep"} <= names
    assert len(names) == 26


def test_a_field_documented_only_outside_its_section_is_reported() -> None:
    text = DOC.read_text(encoding="utf-8")
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("### `Backoff`"))
    row = next(i for i in range(start, len(lines)) if lines[i].startswith("| `jitter` |"))
    moved = lines[row]
    del lines[row]
    lines.append(moved)  # the key still appears in the page, but not in Backoff's section
    assert _problems("\n".join(lines)) == ["Backoff.jitter: not in the Backoff section"]


def test_a_missing_section_and_a_stale_row_are_reported() -> None:
    text = DOC.read_text(encoding="utf-8").replace("### `Alarms`", "### Alarms")
    text = text.replace("| `cwd` |", "| `workdir` |", 1)
    assert _problems(text) == [
        "Task.cwd: not in the Task section",
        "Task: row for unknown key 'workdir'",
        "Alarms: no section whose heading starts with `Alarms`",
    ]


def _yaml_blocks(text: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", text, flags=re.S)


def test_the_complete_example_of_the_reference_is_valid(tmp_path: Path) -> None:
    blocks = [b for b in _yaml_blocks(DOC.read_text(encoding="utf-8")) if "project: shop" in b]
    assert len(blocks) == 1
    (tmp_path / ".env").write_text("DB_PASSWORD=$2b$12$abc\n", encoding="utf-8")
    file = tmp_path / "devster.yaml"
    file.write_text(blocks[0], encoding="utf-8")
    loaded = load_project(file, environ={})
    api_env = loaded.project.tasks["api"].env
    assert api_env["DATABASE_URL"] == "postgres://app:$2b$12$abc@localhost:5432/app"
    assert list(loaded.project.tasks) == [
        "build",
        "db",
        "api",
        "errors",
        "integration",
        "web-logs",
        "prod-logs",
    ]


@pytest.mark.parametrize(
    "marker", ["profiles: [web]", "x-restart: &default-restart", "# yaml-language-server"]
)
def test_the_smaller_yaml_examples_of_the_reference_are_valid(tmp_path: Path, marker: str) -> None:
    (block,) = [b for b in _yaml_blocks(DOC.read_text(encoding="utf-8")) if marker in b]
    block = block.replace("tasks: ...", "tasks: {a: {cmd: 'true'}}")
    file = tmp_path / "devster.yaml"
    file.write_text(block, encoding="utf-8")
    assert load_project(file, environ={}).project.tasks
