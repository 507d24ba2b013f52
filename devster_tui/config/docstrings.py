"""Field docstrings (the string on the line after a field) as JSON Schema descriptions.

The configuration models document each field with an attribute docstring.  pydantic can
read those itself (``use_attribute_docstrings``), but it does so while it builds every
model, by parsing each class's source: measured on this code, that added ~50-60 ms to
``import devster_tui.config.schema`` (~65 ms -> ~120 ms of self time), which every
``devster up`` and ``devster run`` pays.  The docstrings only matter when a schema is
generated, so this module reads them then: the models' ``json_schema_extra`` hook calls
:func:`describe_properties`, which parses the defining module's source once.
"""

from __future__ import annotations

import ast
import functools
import inspect
import sys
from typing import Any

from pydantic import BaseModel


def describe_properties(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Give every property of ``model``'s JSON Schema its field's docstring as description.

    A property that already has a description (``Field(description=...)``) keeps it.
    Properties are matched by field name and by alias, so ``from`` finds ``from_``.

    Args:
        schema: The model's generated JSON Schema (changed in place).
        model: The model class it was generated from.
    """
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return
    docs = field_docstrings(model)
    for name, info in model.model_fields.items():
        doc = docs.get(name)
        if not doc:
            continue
        for key in {name, info.alias or name}:
            prop = properties.get(key)
            if isinstance(prop, dict) and not prop.get("description"):
                prop["description"] = doc


def field_docstrings(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> its attribute docstring, as text for a description, over the MRO.

    Whitespace is normalised (wrapped lines become one line, paragraphs stay apart) and
    reStructuredText's double backticks become Markdown's single ones.

    Args:
        model: A pydantic model class.

    Returns:
        The docstrings found; empty when the source cannot be read (no ``.py`` files).
    """
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls is not BaseModel:
            docs.update(_class_docstrings(cls.__module__).get(cls.__qualname__, {}))
    return docs


@functools.cache
def _class_docstrings(module_name: str) -> dict[str, dict[str, str]]:
    """Class qualname -> field -> docstring, for every top-level class of a module."""
    module = sys.modules.get(module_name)
    try:
        source = inspect.getsource(module) if module is not None else ""
    except (OSError, TypeError):
        return {}
    found: dict[str, dict[str, str]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef):
            found[node.name] = _fields_of(node)
    return found


def _fields_of(node: ast.ClassDef) -> dict[str, str]:
    fields: dict[str, str] = {}
    for stmt, after in zip(node.body, node.body[1:], strict=False):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            fields[stmt.target.id] = _as_description(after.value.value)
    return fields


def _as_description(doc: str) -> str:
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    text = "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())
    return text.replace("``", "`")
