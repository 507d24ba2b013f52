"""The exported JSON Schema agrees with the loader on env values and task names."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import jsonschema
from ruamel.yaml import YAML

from devster_tui.commands.schema import project_schema
from devster_tui.config.errors import ConfigErrors
from devster_tui.config.loader import load_project
from devster_tui.config.schema import DockerBuild, Environment, Task

ENV_EVERYWHERE = """
environments:
  dev:
    env: {DEBUG: true, PORT: 8080}
    layers:
      - docker: {image: app, env: {DEBUG: true, PORT: 8080}}
  img:
    layers:
      - docker: {build: {tag: app:dev, args: {DEBUG: true, PORT: 8080, RATIO: 1.5}}}
tasks:
  api:
    cmd: serve
    environment: dev
    env: {DEBUG: true, PORT: 8080}
"""


def _schema_errors(data: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(project_schema())
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(data)]


def _yaml12(text: str) -> Any:
    """The data an editor's schema check sees: plain YAML 1.2 (true is a boolean)."""
    return YAML(typ="safe", pure=True).load(textwrap.dedent(text))


def test_schema_accepts_unquoted_booleans_and_numbers_as_env_values() -> None:
    data = _yaml12(ENV_EVERYWHERE)
    assert data["tasks"]["api"]["env"] == {"DEBUG": True, "PORT": 8080}
    assert _schema_errors(data) == []


def test_unquoted_env_values_reach_the_task_as_the_text_written(tmp_path: Path) -> None:
    file = tmp_path / "devster.yaml"
    file.write_text(ENV_EVERYWHERE, encoding="utf-8")
    project = load_project(file, environ={}).project
    assert project.tasks["api"].env == {"DEBUG": "true", "PORT": "8080"}
    assert project.environments["dev"].env == {"DEBUG": "true", "PORT": "8080"}
    layer = project.environments["dev"].layers[0].docker
    assert layer is not None and layer.env == {"DEBUG": "true", "PORT": "8080"}


def test_python_config_env_booleans_and_numbers_become_yaml_text() -> None:
    env: dict[str, Any] = {"DEBUG": True, "OFF": False, "PORT": 8080, "RATIO": 1.5}
    expected = {"DEBUG": "true", "OFF": "false", "PORT": "8080", "RATIO": "1.5"}
    assert Task(cmd="x", env=env).env == expected
    assert Environment(env=env).env == expected
    assert DockerBuild(tag="app", args=env).args == expected


def test_schema_still_rejects_a_mapping_or_list_as_env_value() -> None:
    assert _schema_errors({"tasks": {"api": {"cmd": "x", "env": {"A": [1]}}}})
    assert _schema_errors({"tasks": {"api": {"cmd": "x", "env": {"A": {"B": 1}}}}})


def test_schema_rejects_a_task_name_with_a_dot() -> None:
    errors = _schema_errors({"tasks": {"api.v2": {"cmd": "x"}}})
    assert errors and all("api.v2" in e for e in errors), errors
    assert _schema_errors({"tasks": {"api-v2": {"cmd": "x"}, "_w1": {"cmd": "y"}}}) == []
    assert _schema_errors({"tasks": {"my api": {"cmd": "x"}}})


def test_schema_task_name_pattern_is_the_loaders(tmp_path: Path) -> None:
    # The same names fail in both: the schema cannot drift from the model.
    for name, ok in (("api", True), ("a-b_c9", True), ("api.v2", False), ("-x", False)):
        file = tmp_path / "devster.yaml"
        file.write_text(f"tasks:\n  '{name}': {{cmd: x}}\n", encoding="utf-8")
        try:
            load_project(file, environ={})
            loaded = True
        except ConfigErrors:
            loaded = False
        assert loaded is ok, name
        assert (_schema_errors({"tasks": {name: {"cmd": "x"}}}) == []) is ok, name
