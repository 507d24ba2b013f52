"""``devster schema`` describes every key, so an editor's hover says what the key means."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from devster_tui.config.schema import Backoff, Dependency, StdinSpec


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "devster_tui", "schema"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def _properties(node: Any, where: str = "#") -> Iterator[tuple[str, Any]]:
    """Every property of every object schema: the root, $defs, anyOf branches, nested."""
    if isinstance(node, dict):
        for key, prop in (node.get("properties") or {}).items():
            yield f"{where}/properties/{key}", prop
        for key, value in node.items():
            yield from _properties(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _properties(value, f"{where}/{index}")


def test_every_property_of_every_definition_has_a_description(schema: dict[str, Any]) -> None:
    found = list(_properties(schema))
    assert len(found) > 100  # the walk reaches the definitions, not just the root
    assert {p for p, _ in found if p.startswith("#/$defs/")}
    missing = [p for p, prop in found if not str(prop.get("description", "")).strip()]
    assert missing == []


def _source_docstring(model: type[Any], field: str) -> str:
    """The docstring written on the line after ``field`` in ``model``'s source."""
    lines = inspect.getsource(model).splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{field}:"))
    text = "\n".join(lines[start + 1 :])
    body = text.split('"""')[1]
    return " ".join(body.split())


def test_a_fields_description_is_its_docstring(schema: dict[str, Any]) -> None:
    jitter = schema["$defs"]["Backoff"]["properties"]["jitter"]["description"]
    assert jitter == "Random spread, as a fraction of the delay (0.1 = +-10%)."
    assert jitter == _source_docstring(Backoff, "jitter")


def test_a_wrapped_docstring_becomes_one_line_with_markdown_code(
    schema: dict[str, Any],
) -> None:
    timeout = schema["$defs"]["Dependency"]["properties"]["timeout"]["description"]
    assert "\n" not in timeout
    assert timeout == _source_docstring(Dependency, "timeout")
    condition = schema["$defs"]["Dependency"]["properties"]["condition"]["description"]
    assert condition.startswith(
        "What the dependency must reach before the dependent starts: `started`,"
    )
    assert condition.replace("`", "``") == _source_docstring(Dependency, "condition")


def test_an_aliased_key_and_a_model_reference_are_described(schema: dict[str, Any]) -> None:
    # ``from`` is the field ``from_``; StdinSpec's object form sits in an anyOf.
    stdin = schema["$defs"]["StdinSpec"]["anyOf"][0]["properties"]["from"]["description"]
    assert stdin.replace("`", "``") == _source_docstring(StdinSpec, "from_")
    # A property that is a $ref to a model still says what the key is for.
    assert schema["properties"]["logs"] == {
        "$ref": "#/$defs/LogSettings",
        "description": "Output storage settings.",
    }


def test_loading_the_models_does_not_read_their_source() -> None:
    # The descriptions are read when a schema is generated, not on every `devster up`.
    code = (
        "import sys, devster_tui.config.schema, devster_tui.config.loader; "
        "print('devster_tui.config.docstrings' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"
