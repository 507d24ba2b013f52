"""YAML source reading: bytes -> plain Python data plus a :class:`SourceMap` of positions.

Why not ``yaml.load``: a YAML 1.1 constructor turns ``NO`` into False, ``1.10`` into 1.1 and
``0755`` into 493, silently accepts duplicate keys, and forgets where each value was
written.  Here ruamel.yaml only scans and parses (events with marks); this module composes
the node tree itself, so it can keep every plain scalar as the exact text written
(:class:`PlainScalar`), report every duplicate key with both positions, drop ``x-`` keys,
expand anchors and aliases under a node budget (no billion-laughs bombs), and turn
ruamel's scanner and parser errors into positioned :class:`ConfigError` values.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from devster_tui.config.errors import ConfigError, ConfigErrors, KeyPath, Position, SourceMap
from devster_tui.config.types import PlainScalar

MAX_NODES = 100_000
"""Values a document may expand to (aliases included); more is rejected as an alias bomb."""

MAX_DEPTH = 100
"""Nesting depth of mappings and sequences a document may use."""

USER_KEY_PREFIX = "x-"
"""Keys starting with this are the user's own (anchors, notes) and are dropped."""

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TAG_PREFIX = "tag:yaml.org,2002:"
_MERGE_KEY = "<<"


@dataclass(slots=True, eq=False)
class _Node:
    """A composed YAML node: where it starts."""

    pos: Position
    """Where the node is written."""


@dataclass(slots=True, eq=False)
class _Scalar(_Node):
    value: str
    """The scalar's text after YAML unquoting and folding."""
    plain: bool
    """True for a plain (unquoted) scalar without an explicit tag."""


@dataclass(slots=True, eq=False)
class _Seq(_Node):
    items: list[_Node] = field(default_factory=list)
    """The items."""


@dataclass(slots=True, eq=False)
class _Map(_Node):
    pairs: list[tuple[_Node, _Node]] = field(default_factory=list)
    """Key and value nodes, in file order (duplicates kept, reported when building)."""
    pending: _Node | None = None
    """A key whose value has not been composed yet."""


@dataclass(slots=True, eq=False)
class _Alias(_Node):
    target: _Node
    """The anchored node this alias repeats."""
    name: str
    """The anchor name."""


class _TooBig(Exception):
    """The document expands to more than :data:`MAX_NODES` values."""

    def __init__(self, pos: Position) -> None:
        super().__init__(pos)
        self.pos = pos


def _pos(mark: Any) -> Position:
    return Position(int(mark.line) + 1, int(mark.column) + 1)


def decode(data: bytes, file: str) -> str:
    """Decode a project file as UTF-8 (a leading BOM is dropped; CRLF is kept for YAML).

    Args:
        data: The file's bytes.
        file: The file name for errors.

    Returns:
        The text.

    Raises:
        ConfigErrors: for bytes that are not UTF-8, with the offset of the first bad byte.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start
        line_start = data.rfind(b"\n", 0, offset) + 1
        line = data.count(b"\n", 0, offset) + 1
        col = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
        bad = data[offset : offset + 1].hex()
        hint = ""
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            hint = " (the file looks UTF-16 encoded; save it as UTF-8)"
        message = f"not valid UTF-8: byte 0x{bad} at byte offset {offset}{hint}"
        raise ConfigErrors([ConfigError(file, line, col, (), message)]) from None


def _yaml_error(exc: Exception, file: str) -> ConfigError:
    """Translate a ruamel MarkedYAMLError into a positioned error with a plain message."""
    problem = str(getattr(exc, "problem", None) or exc).strip()
    context = str(getattr(exc, "context", None) or "").strip()
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    context_mark = getattr(exc, "context_mark", None)
    message = problem
    if "'\\t'" in problem or "\t" in problem:
        message = "tab character: YAML indentation must use spaces, not tabs"
    elif "quoted scalar" in context and context_mark is not None:
        mark = context_mark
        message = "unclosed quote: the string that starts here is never closed"
    elif problem.startswith("expected <block end>"):
        found = problem.partition("but found ")[2] or "more content"
        message = (
            "bad indentation: this line does not line up with the lines above it "
            f"(found {found} where a block should have ended)"
        )
    elif problem == "mapping values are not allowed here":
        message = (
            "unexpected ':' here (quote the value if it contains ': ', or fix the indentation)"
        )
    elif "flow" in context and context_mark is not None and problem.startswith("expected"):
        opened = _pos(context_mark)
        bracket = "{" if "mapping" in context else "["
        message = (
            f"{problem}: is the '{bracket}' opened at line {opened.line} column {opened.col} "
            "closed?"
        )
    elif context:
        message = f"{problem} ({context})"
    if mark is None:
        return ConfigError(file, 1, 1, (), f"invalid YAML: {message}")
    where = _pos(mark)
    return ConfigError(file, where.line, where.col, (), f"invalid YAML: {message}")


def _compose(text: str, file: str) -> _Node | None:
    """Compose the single document of ``text`` into a node tree (None for an empty file)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError
    from ruamel.yaml.events import (
        AliasEvent,
        CollectionEndEvent,
        DocumentStartEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceStartEvent,
    )

    yaml = YAML(typ="safe", pure=True)
    root: _Node | None = None
    stack: list[_Seq | _Map] = []
    anchors: dict[str, _Node] = {}
    open_anchors: dict[int, str] = {}
    documents = 0

    def attach(node: _Node) -> None:
        nonlocal root
        if not stack:
            root = node
            return
        top = stack[-1]
        if isinstance(top, _Seq):
            top.items.append(node)
        elif top.pending is None:
            top.pending = node
        else:
            top.pairs.append((top.pending, node))
            top.pending = None

    def fail(mark: Any, message: str) -> ConfigErrors:
        where = _pos(mark)
        return ConfigErrors([ConfigError(file, where.line, where.col, (), message)])

    def check_tag(event: Any, kind: str) -> bool:
        """Whether the node's tag is acceptable; True means 'an explicit !!str'."""
        tag = getattr(event, "ctag", None)
        if tag is None:
            return False
        name = str(tag)
        if name == "!" or name == _TAG_PREFIX + kind:
            return name != "!"
        shown = "!!" + name[len(_TAG_PREFIX) :] if name.startswith(_TAG_PREFIX) else name
        raise fail(
            event.start_mark,
            f"unsupported YAML tag {shown}: devster reads plain YAML (remove the tag, "
            "or quote the value)",
        )

    try:
        for event in yaml.parse(io.StringIO(text)):
            if isinstance(event, DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise fail(
                        event.start_mark,
                        "a second YAML document ('---'): a project file holds one document",
                    )
            elif isinstance(event, ScalarEvent):
                explicit_str = check_tag(event, "str")
                plain = event.style is None and not explicit_str and event.ctag is None
                node: _Node = _Scalar(_pos(event.start_mark), str(event.value), plain)
                if event.anchor is not None:
                    anchors[event.anchor] = node
                attach(node)
            elif isinstance(event, SequenceStartEvent | MappingStartEvent):
                check_tag(event, "seq" if isinstance(event, SequenceStartEvent) else "map")
                if len(stack) >= MAX_DEPTH:
                    raise fail(event.start_mark, f"nested more than {MAX_DEPTH} levels deep")
                coll: _Seq | _Map = (
                    _Seq(_pos(event.start_mark))
                    if isinstance(event, SequenceStartEvent)
                    else _Map(_pos(event.start_mark))
                )
                if event.anchor is not None:
                    open_anchors[id(coll)] = event.anchor
                attach(coll)
                stack.append(coll)
            elif isinstance(event, CollectionEndEvent):
                done = stack.pop()
                name = open_anchors.pop(id(done), None)
                if name is not None:
                    anchors[name] = done
            elif isinstance(event, AliasEvent):
                target = anchors.get(event.anchor)
                if target is None:
                    if event.anchor in open_anchors.values():
                        raise fail(
                            event.start_mark,
                            f"alias *{event.anchor} is used inside its own anchor "
                            "(a recursive structure)",
                        )
                    raise fail(event.start_mark, f"unknown alias *{event.anchor}")
                attach(_Alias(_pos(event.start_mark), target, str(event.anchor)))
    except MarkedYAMLError as exc:
        raise ConfigErrors([_yaml_error(exc, file)]) from None
    return root


class _Builder:
    """Turn a node tree into dicts, lists, strings and None, recording every position."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.source_map = SourceMap()
        self.errors: list[ConfigError] = []
        self.count = 0
        self.alias_stack: list[_Alias] = []

    def error(self, pos: Position, path: KeyPath, message: str) -> None:
        self.errors.append(ConfigError(self.file, pos.line, pos.col, path, message))

    def build(self, node: _Node, path: KeyPath, key_pos: Position | None) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBig(self.alias_stack[0].pos if self.alias_stack else node.pos)
        self.source_map.set(path, key_pos, node.pos)
        if isinstance(node, _Alias):
            self.alias_stack.append(node)
            try:
                value = self.build(node.target, path, key_pos)
            finally:
                self.alias_stack.pop()
            # The alias is where this value is written; keep that position for the path.
            self.source_map.set(path, key_pos, node.pos)
            return value
        if isinstance(node, _Scalar):
            if node.plain and node.value == "" and key_pos is not None:
                # An empty value's mark is the next token, often on the next line.
                self.source_map.set(path, key_pos, key_pos)
            if node.plain:
                return None if node.value in _NULLS else PlainScalar(node.value)
            return node.value
        if isinstance(node, _Seq):
            return [self.build(item, (*path, i), None) for i, item in enumerate(node.items)]
        assert isinstance(node, _Map)
        return self.build_map(node, path)

    def build_map(self, node: _Map, path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merges: list[tuple[_Node, Position]] = []
        explicit: list[tuple[str, Position, _Node]] = []
        seen: dict[str, Position] = {}
        for key_node, value_node in node.pairs:
            key = key_node.target if isinstance(key_node, _Alias) else key_node
            if not isinstance(key, _Scalar):
                self.error(key_node.pos, path, "a key must be text, not a mapping or a list")
                continue
            if key.plain and key.value == _MERGE_KEY:
                merges.append((value_node, key_node.pos))
                continue
            if key.value == "":
                self.error(key_node.pos, path, "empty key")
                continue
            first = seen.get(key.value)
            if first is not None:
                self.error(
                    key_node.pos,
                    (*path, key.value),
                    f"duplicate key {key.value!r}: first at line {first.line} column "
                    f"{first.col}, again at line {key_node.pos.line} column {key_node.pos.col}",
                )
                continue
            seen[key.value] = key_node.pos
            if key.value.startswith(USER_KEY_PREFIX):
                continue
            explicit.append((key.value, key_node.pos, value_node))
        # Merged keys first, so that the explicit ones (which win) overwrite their positions.
        for value_node, merge_pos in merges:
            for source in self.merge_sources(value_node, merge_pos, path):
                merged = self.build_map(source, path)
                for merged_key, merged_value in merged.items():
                    result.setdefault(merged_key, merged_value)
        for text, key_pos, value_node in explicit:
            result[text] = self.build(value_node, (*path, text), key_pos)
        return result

    def merge_sources(self, node: _Node, merge_pos: Position, path: KeyPath) -> list[_Map]:
        target = node.target if isinstance(node, _Alias) else node
        if isinstance(target, _Map):
            return [target]
        if isinstance(target, _Seq):
            out: list[_Map] = []
            for item in target.items:
                resolved = item.target if isinstance(item, _Alias) else item
                if isinstance(resolved, _Map):
                    out.append(resolved)
                else:
                    self.error(item.pos, path, "'<<' merges mappings only")
            return out
        self.error(merge_pos, path, "'<<' merges a mapping or a list of mappings")
        return []


def parse_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse a project file's text into plain data and the positions of every key and value.

    Mappings become dicts (``x-`` keys dropped, ``<<`` merges applied), sequences lists,
    plain ``null``/``~``/empty scalars None, other plain scalars :class:`PlainScalar` (the
    exact text), quoted and block scalars str.

    Args:
        text: The decoded file (see :func:`decode`).
        file: The file name for errors.

    Returns:
        The data (None for an empty document) and its source map.

    Raises:
        ConfigErrors: YAML syntax errors, duplicate keys, unknown aliases, alias bombs.
    """
    root = _compose(text, file)
    builder = _Builder(file)
    if root is None:
        return None, builder.source_map
    try:
        data = builder.build(root, (), None)
    except _TooBig as exc:
        message = (
            f"the document expands to more than {MAX_NODES} values through its aliases "
            "(an alias bomb?)"
        )
        raise ConfigErrors([ConfigError(file, exc.pos.line, exc.pos.col, (), message)]) from None
    if builder.errors:
        raise ConfigErrors(builder.errors)
    return data, builder.source_map
