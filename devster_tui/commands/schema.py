"""``devster schema``: the JSON Schema of project files, for editors and CI.

Wire it into an editor with a yaml-language-server modeline at the top of ``devster.yaml``::

    # yaml-language-server: $schema=./devster.schema.json

after ``devster schema > devster.schema.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""The JSON Schema dialect pydantic generates."""

USER_KEYS: dict[str, Any] = {"^x-": {}}
"""``x-`` keys are the user's own everywhere: allowed next to every model's properties."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--indent``."""
    parser.add_argument(
        "--indent",
        type=int,
        default=2,
        metavar="N",
        help="indentation of the JSON output (default: 2; 0 for one line)",
    )


_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}
"""pydantic leaves its own names for bounds on validator-wrapped numbers; JSON Schema's."""


def _fix(node: Any) -> None:
    """Allow ``x-`` keys next to every model's properties; use JSON Schema's bound names."""
    if isinstance(node, dict):
        if node.get("additionalProperties") is False and "properties" in node:
            node.setdefault("patternProperties", {}).update(USER_KEYS)
        if node.get("type") in ("integer", "number"):
            for ours, theirs in _BOUNDS.items():
                if ours in node:
                    node[theirs] = node.pop(ours)
        for value in node.values():
            _fix(value)
    elif isinstance(node, list):
        for value in node:
            _fix(value)


def _string_forms() -> dict[str, dict[str, Any]]:
    """Models that also accept a string in YAML (their ``_from_string`` validators)."""
    from typing import get_args

    from devster_tui.config.schema import RestartPolicyName

    return {
        "Layer": {"const": "local", "description": "The local layer."},
        "RestartPolicy": {
            "enum": list(get_args(RestartPolicyName)),
            "description": "Just the policy name.",
        },
        "StdinSpec": {
            "type": "string",
            "description": "console, none, or a stream: TASK, TASK.stdout, TASK.stderr.",
        },
    }


def _add_string_forms(definitions: dict[str, Any]) -> None:
    for name, form in _string_forms().items():
        model = definitions.get(name)
        if model is None:
            continue
        outer = {k: model.pop(k) for k in ("title", "description") if k in model}
        definitions[name] = {**outer, "anyOf": [model, form]}


def project_schema() -> dict[str, Any]:
    """The JSON Schema of a project file, with ``$schema``, ``title`` and ``x-`` keys allowed.

    Returns:
        The schema as JSON-ready data.
    """
    from devster_tui.config.schema import Project

    generated = Project.model_json_schema(by_alias=True)
    _fix(generated)
    _add_string_forms(generated.get("$defs", {}))
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "devster project file",
        **{k: v for k, v in generated.items() if k != "title"},
    }


def run(args: argparse.Namespace) -> int:
    """Print the schema on stdout."""
    indent = args.indent if args.indent > 0 else None
    sys.stdout.write(json.dumps(project_schema(), indent=indent, sort_keys=False) + "\n")
    return 0
