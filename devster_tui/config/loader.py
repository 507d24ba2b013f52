"""Load a project file into a validated :class:`Project`, or every error with its position.

Why one pipeline with error collection at each stage: nothing may start unless the whole
file is valid, and a user fixing a file wants all of its problems in one run.  The stages
are: read and decode (:mod:`yamlsrc`), ``.env`` files (:mod:`envfile`), interpolation
(:mod:`interpolate`), pydantic validation (each error's ``loc`` mapped back to
``FILE:LINE:COL: key.path`` with a readable message), then the semantic checks
(:mod:`checks`: references, cycles, pipes).  When validation fails, the semantic checks
still run over the entries that do validate (invalid ones stand in by name only), so type
errors and reference errors arrive together.  ``devster.py`` files skip the YAML stages.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from devster_tui.config.checks import Placeholders, check_project
from devster_tui.config.discover import CANDIDATES
from devster_tui.config.envfile import read_env_file
from devster_tui.config.errors import ConfigError, ConfigErrors, KeyPath, Position, SourceMap
from devster_tui.config.interpolate import InterpolationError, interpolate, interpolate_data
from devster_tui.config.schema import (
    Environment,
    Host,
    ManualObserver,
    Observer,
    Project,
    SshLayer,
    Task,
)
from devster_tui.config.secrets import SecretValues, check_references
from devster_tui.config.yamlsrc import decode, parse_yaml


@dataclass(frozen=True)
class LoadedProject:
    """A validated project and what the engine needs next to it."""

    project: Project
    """The validated model; ``project.project`` defaults to the directory name."""
    file: Path
    """Absolute path of the project file."""
    root: Path
    """Directory of the file: relative paths in the project resolve against it."""
    source_map: SourceMap | None
    """Positions of keys and values (None for ``devster.py`` files)."""
    variables: Mapping[str, str] = field(default_factory=dict)
    """The project's ``env_file`` values with the process environment over them."""
    profiles: tuple[str, ...] = ()
    """Active profiles: the file's defaults, then the requested ones."""
    secrets: SecretValues | None = None
    """The values of ``secrets:``, once resolved at start-up (never by the loader)."""


def load_project(
    file: Path,
    profiles: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> LoadedProject:
    """Load, interpolate, validate and check a project file.

    Args:
        file: A ``.yaml``/``.yml`` file, or a ``.py`` file that builds the project.  Errors
            name it as given here.
        profiles: Profiles requested on the command line, added to the file's defaults.
        environ: The process environment (default: ``os.environ``).

    Returns:
        The loaded project.

    Raises:
        ConfigErrors: every problem found in the file, each with its position.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    name = str(file)
    path = Path(file).absolute()
    root = path.parent
    errors: list[ConfigError] = []
    source_map: SourceMap | None
    if path.suffix == ".py":
        from devster_tui.config.pyconfig import load_python_project

        python_project, source_map = load_python_project(file, env)
        dotenv = _read_project_env_files(python_project.env_file, root, name, source_map, errors)
        loaded = _Validated(python_project, python_project, None)
        errors.extend(
            check_references(
                python_project.model_dump(by_alias=True, exclude_defaults=True),
                python_project.secrets,
                source_map,
                name,
            )
        )
    else:
        loaded, source_map, dotenv = _load_yaml(path, name, root, env, errors)
    if loaded.checkable is not None:
        errors.extend(_check_task_env_files(loaded.checkable, root, name, source_map))
        semantic = check_project(
            loaded.checkable, source_map, name, placeholders=loaded.placeholders
        )
        # A value whose interpolation failed is kept as written and already reported: the
        # checks that read it would only report it again, less helpfully.
        kept = loaded.uninterpolated
        errors.extend(e for e in semantic if not any(_under(e.path, p) for p in kept))
    project = loaded.project
    if project is None:
        # Validation failed: ``errors`` holds its errors.  Only a fully valid project
        # goes further; stand-ins never leave this function.
        raise ConfigErrors(_dedup(errors))
    if not project.project:
        project = project.model_copy(update={"project": root.name})
    if "state_dir" not in project.model_fields_set and path.name not in CANDIDATES:
        # Two project files in one directory must not share an event log and output logs.
        project = project.model_copy(update={"state_dir": f"{project.state_dir}/{path.name}"})
    active = _active_profiles(project, profiles, name, errors)
    if errors:
        raise ConfigErrors(_dedup(errors))
    return LoadedProject(
        project=project,
        file=path,
        root=root,
        source_map=source_map,
        variables={**dotenv, **env},
        profiles=active,
    )


def _under(path: KeyPath, prefix: KeyPath) -> bool:
    return path[: len(prefix)] == prefix


def _dedup(errors: list[ConfigError]) -> list[ConfigError]:
    return list(dict.fromkeys(errors))


@dataclass(frozen=True)
class _Validated:
    """The outcome of validation: the project if it is valid, and what the checks read."""

    project: Project | None
    """The validated project; None when anything failed."""
    checkable: Project | None
    """What the semantic checks read: the project, a partial project with stand-ins for
    invalid entries, or None when too little of the file has a usable shape."""
    placeholders: Placeholders | None
    """The stand-ins of ``checkable`` (None when it has none)."""
    uninterpolated: frozenset[KeyPath] = frozenset()
    """Paths of values whose interpolation failed (kept as written, already reported)."""


# --------------------------------------------------------------------------- YAML stages


def _load_yaml(
    path: Path, name: str, root: Path, env: Mapping[str, str], errors: list[ConfigError]
) -> tuple[_Validated, SourceMap, dict[str, str]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigErrors([ConfigError(name, 0, 0, (), f"cannot read: {exc.strerror}")]) from None
    text = decode(raw, name)
    data, source_map = parse_yaml(text, name)
    if data is None:
        message = "the file is empty: expected a mapping with at least 'tasks:'"
        raise ConfigErrors([ConfigError(name, 1, 1, (), message)])
    if not isinstance(data, dict):
        pos = source_map.value(()) or Position(1, 1)
        message = f"the top level must be a mapping (key: value), got {_describe(data)}"
        raise ConfigErrors([ConfigError(name, pos.line, pos.col, (), message)])

    # env_file is interpolated from the process environment only: it names the variables.
    dotenv: dict[str, str] = {}
    if "env_file" in data:
        env_file, env_errors = interpolate_data(
            data["env_file"], env, source_map, name, ("env_file",)
        )
        errors.extend(_at_dollar(e, data, env, text) for e in env_errors)
        data["env_file"] = env_file
        if not env_errors:
            dotenv = _read_project_env_files(env_file, root, name, source_map, errors)
    variables = {**dotenv, **env}
    rest = {k: v for k, v in data.items() if k != "env_file"}
    interpolated, interpolation_errors = interpolate_data(rest, variables, source_map, name)
    errors.extend(_at_dollar(e, data, variables, text) for e in interpolation_errors)
    if "env_file" in data:
        interpolated["env_file"] = data["env_file"]
    failed_paths = frozenset(e.path for e in interpolation_errors)
    declared = interpolated.get("secrets")
    errors.extend(
        check_references(
            interpolated, declared if isinstance(declared, dict) else {}, source_map, name
        )
    )
    try:
        project = Project.model_validate(interpolated)
    except ValidationError as exc:
        for error in validation_errors(exc, name, source_map, interpolated):
            if not any(_under(error.path, p) for p in failed_paths):
                errors.append(error)
        partial = _partial_project(interpolated)
        if partial is None:
            return _Validated(None, None, None), source_map, dotenv
        return _Validated(None, *partial, failed_paths), source_map, dotenv
    if errors:
        return _Validated(None, project, None, failed_paths), source_map, dotenv
    return _Validated(project, project, None), source_map, dotenv


# --------------------------------------------------------------------------- partial projects

_TASK_EDGES = ("depends_on", "triggers", "stdin", "environment", "hosts")
"""What a stand-in task keeps of an invalid task (each only if it validates)."""


def _stand_in(collection: str, entry: Any, failed: set[str | int] | None) -> BaseModel:
    """A minimal valid model in place of an invalid entry: its name's only carrier.

    A task keeps the edges that validate (``depends_on``, ``triggers``, ``stdin``,
    ``environment``, ``hosts``) so that cycles through it and its own references are still
    checked; the other kinds keep nothing.  The checks never read a stand-in's content.

    Args:
        collection: ``tasks``, ``observers``, ``environments`` or ``hosts``.
        entry: The entry as written.
        failed: The entry's keys that have errors (None: the whole entry is suspect).
    """
    if collection == "environments":
        return Environment()
    if collection == "observers":
        return Observer(manual=ManualObserver())
    if collection == "hosts":
        return Host(ssh=SshLayer(host="stand-in"))
    if failed is None or not isinstance(entry, dict):
        return Task()
    kept = {k: entry[k] for k in _TASK_EDGES if k in entry and k not in failed}
    try:
        return Task.model_validate(kept)
    except ValidationError:
        return Task()


def _failed_keys(exc: ValidationError) -> set[str | int] | None:
    """The top-level keys of an entry that have errors (None: an error on the whole entry)."""
    locs = [tuple(err["loc"]) for err in exc.errors(include_url=False)]
    if any(not loc for loc in locs):
        return None
    return {loc[0] for loc in locs}


def _partial_project(data: dict[str, Any]) -> tuple[Project, Placeholders] | None:
    """The entries of an invalid project that validate, plus stand-ins for the others.

    Returns:
        The partial project (for the semantic checks only) and the names of its stand-ins,
        or None when a collection (``tasks``, ``observers``, ``environments``, ``hosts``)
        is not a mapping: its names are unknown, so references to them cannot be checked.
    """
    collections: dict[str, Any] = {}
    invalid: dict[str, frozenset[str]] = {}
    for key in ("environments", "hosts", "observers", "tasks"):
        raw = data.get(key, {})
        if not isinstance(raw, dict):
            return None
        key_type, value_type = get_args(Project.model_fields[key].annotation)
        names: TypeAdapter[str] = TypeAdapter(key_type)
        entries: dict[str, BaseModel] = {}
        bad: set[str] = set()
        for entry_name, entry in raw.items():
            failed: set[str | int] | None = set()
            try:
                entries[entry_name] = value_type.model_validate(entry)
            except ValidationError as exc:
                failed = _failed_keys(exc)
            try:
                names.validate_python(entry_name)
            except ValidationError:
                pass
            else:
                if failed == set():
                    continue
            bad.add(entry_name)
            entries[entry_name] = _stand_in(key, entry, failed)
        collections[key] = entries
        invalid[key] = frozenset(bad)
    return Project.model_construct(**collections), Placeholders(**invalid)


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
"""What ends a line for the YAML reader (and so for the positions of the source map)."""


def _at_dollar(
    error: ConfigError, data: Any, variables: Mapping[str, str], text: str
) -> ConfigError:
    """Move an interpolation error from the start of its value to the ``${`` at fault.

    Only for a single-line plain or quoted scalar whose source text maps 1:1 to its value
    (no escapes, no folding, no anchor or tag in front); any other error is kept as is.
    """
    value: Any = data
    for part in error.path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        else:
            return error
    if not isinstance(value, str) or error.line < 1 or error.col < 1:
        return error
    try:
        interpolate(value, variables)
    except InterpolationError as exc:
        offset = exc.offset
    else:
        return error
    if not value.startswith("${", offset):
        return error
    lines = _LINE_BREAK.split(text)
    if error.line > len(lines):
        return error
    line = lines[error.line - 1]
    start = error.col - 1
    quote = line[start : start + 1]
    if quote in ("'", '"'):
        start += 1
        end = start + len(value)
        if line[end : end + 1] != quote or quote in value or (quote == '"' and "\\" in value):
            return error
    if line[start : start + len(value)] != value or "\ufeff" in line[: start + offset]:
        return error
    return replace(error, col=start + offset + 1)


def _env_file_list(value: Any) -> list[tuple[KeyPath, str]]:
    if isinstance(value, str):
        return [((), value)]
    if isinstance(value, list):
        return [((i,), v) for i, v in enumerate(value) if isinstance(v, str)]
    return []


def _read_env_files(
    value: Any,
    root: Path,
    name: str,
    source_map: SourceMap | None,
    at: KeyPath,
    errors: list[ConfigError],
) -> dict[str, str]:
    merged: dict[str, str] = {}
    for sub, entry in _env_file_list(value):
        target = root / entry
        where = (*at, *sub)
        try:
            merged.update(read_env_file(target, str(Path(name).parent / entry)))
        except ConfigErrors as exc:
            errors.extend(exc.errors)
        except OSError as exc:
            pos = source_map.value(where) if source_map is not None else None
            line, col = (pos.line, pos.col) if pos else (0, 0)
            reason = "no such file" if isinstance(exc, FileNotFoundError) else exc.strerror
            errors.append(ConfigError(name, line, col, where, f"cannot read {entry}: {reason}"))
    return merged


def _read_project_env_files(
    value: Any, root: Path, name: str, source_map: SourceMap | None, errors: list[ConfigError]
) -> dict[str, str]:
    return _read_env_files(value, root, name, source_map, ("env_file",), errors)


def _check_task_env_files(
    project: Project, root: Path, name: str, source_map: SourceMap | None
) -> list[ConfigError]:
    """Task ``env_file`` entries must exist and parse, before anything starts."""
    errors: list[ConfigError] = []
    for task_name, task in project.tasks.items():
        if task.env_file is not None:
            at: KeyPath = ("tasks", task_name, "env_file")
            _read_env_files(task.env_file, root, name, source_map, at, errors)
    return errors


def _active_profiles(
    project: Project, requested: Sequence[str], name: str, errors: list[ConfigError]
) -> tuple[str, ...]:
    declared = set(project.profiles)
    for task in project.tasks.values():
        declared.update(task.profiles)
    for profile in requested:
        if profile not in declared:
            close = difflib.get_close_matches(profile, sorted(declared), n=1)
            if close:
                hint = f"; did you mean {close[0]!r}?"
            elif declared:
                hint = f"; known profiles: {', '.join(sorted(declared))}"
            else:
                hint = "; no task declares profiles"
            errors.append(ConfigError(name, 0, 0, (), f"unknown profile {profile!r}{hint}"))
    return tuple(dict.fromkeys([*project.profiles, *requested]))


# --------------------------------------------------------------------------- pydantic errors

_TYPE_ERRORS = frozenset(
    {
        "string_type",
        "list_type",
        "dict_type",
        "model_type",
        "model_attributes_type",
        "int_type",
        "float_type",
        "bool_type",
        "none_required",
        "tuple_type",
        "set_type",
        "is_instance_of",
    }
)
_EXPECTED = {
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "none_required": "nothing (null)",
    "tuple_type": "a list",
    "set_type": "a list",
}
_PATTERN_MESSAGES = {
    r"^[A-Za-z0-9_][A-Za-z0-9_-]*$": "use letters, digits, '_' and '-' only (no dots or spaces)",
    r"^[^.\s]+(\.(stdout|stderr))?$": "expected TASK, TASK.stdout or TASK.stderr",
}
_PORT_KEYS = frozenset({"port", "ports", "tcp"})


@dataclass
class _Located:
    """A pydantic error with its ``loc`` split into document path and union branches."""

    err: Any
    """The pydantic error dict."""
    path: KeyPath
    """Keys and indexes that exist in the document (plus a missing or unknown key)."""
    branches: list[tuple[int, str]]
    """Union branch labels, each with the path length where it applies."""
    on_key: bool = False
    """The error is about a mapping key itself (``[key]`` in the loc)."""


def _locate(err: Any, data: Any) -> _Located:
    loc = tuple(err["loc"])
    path: list[str | int] = []
    branches: list[tuple[int, str]] = []
    on_key = False
    node = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if part == "[key]":
            on_key = True
        elif isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif last and err["type"] == "missing" and isinstance(part, str):
            path.append(part)
        else:
            branches.append((len(path), str(part)))
    return _Located(err, tuple(path), branches, on_key)


def _select(located: list[_Located]) -> list[_Located]:
    """Keep, for each union, the errors of the branch the user most likely meant."""
    out = [e for e in located if not e.branches]
    groups: dict[tuple[int, KeyPath], list[_Located]] = defaultdict(list)
    for e in located:
        if e.branches:
            at = e.branches[0][0]
            groups[(at, e.path[:at])].append(e)
    for (at, prefix), group in groups.items():
        by_label: dict[str, list[_Located]] = defaultdict(list)
        for e in group:
            by_label[e.branches[0][1]].append(e)
        if len(by_label) > 1 and all(
            e.err["type"] in _TYPE_ERRORS and len(e.path) == at for e in group
        ):
            expected = list(dict.fromkeys(_EXPECTED.get(e.err["type"], "a value") for e in group))
            merged = dict(group[0].err)
            merged["type"] = "union_type"
            merged["msg"] = f"expected {' or '.join(expected)}, got {_describe(merged['input'])}"
            out.append(_Located(merged, prefix, [], group[0].on_key))
            continue

        def score(items: list[_Located], at: int = at) -> tuple[int, int, int]:
            shaped = sum(
                1 for e in items if not (e.err["type"] in _TYPE_ERRORS and len(e.path) == at)
            )
            depth = max(len(e.path) - at for e in items)
            return (1 if shaped else 0, depth, -len(items))

        best = max(by_label.values(), key=score)
        for e in best:
            e.branches = e.branches[1:]
        out.extend(_select(best))
    return out


def validation_errors(
    exc: ValidationError, file: str, source_map: SourceMap | None, data: Any
) -> list[ConfigError]:
    """Turn a pydantic ``ValidationError`` into positioned errors with readable messages.

    Args:
        exc: The exception from ``Project.model_validate(data)``.
        file: The file name for the errors.
        source_map: Positions (None: every error gets line 0).
        data: The validated input, used to tell document keys from union branch labels.

    Returns:
        One error per problem; for a union, only the errors of the most relevant branch.
    """
    located = _select([_locate(err, data) for err in exc.errors(include_url=False)])
    out: dict[tuple[KeyPath, str], ConfigError] = {}
    for e in located:
        kind = e.err["type"]
        path = e.path
        shown = path
        if kind == "missing":
            shown = path[:-1]
        if kind in ("extra_forbidden", "missing") or e.on_key:
            pos = source_map.key(path) if source_map is not None else None
        else:
            pos = source_map.value(path) if source_map is not None else None
        line, col = (pos.line, pos.col) if pos is not None else (0, 0)
        message = _message(e, path)
        out.setdefault((shown, message), ConfigError(file, line, col, shown, message))
    return list(out.values())


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return repr(str(value))
    return type(value).__name__


def _message(e: _Located, path: KeyPath) -> str:
    err = e.err
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    last = path[-1] if path else ""
    parent = path[-2] if len(path) > 1 else ""
    if kind == "union_type":
        return str(err["msg"])
    if kind == "extra_forbidden":
        return f"unknown key {last!r}" + _key_hint(str(last), path[:-1])
    if kind == "missing":
        return f"missing required key {last!r}"
    if kind in ("value_error", "assertion_error"):
        text = str(err["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            text = text.removeprefix(prefix)
        return text
    if kind == "literal_error":
        options = re.findall(r"'((?:[^'\\]|\\.)*)'", str(ctx.get("expected", "")))
        close = difflib.get_close_matches(str(value), options, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"expected one of {', '.join(options)}, got {_describe(value)}{hint}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_describe(value)}"
    if path == ("version",) and kind in ("less_than_equal", "greater_than_equal"):
        return f"unsupported version {value}: this devster reads version 1"
    is_port = str(last) in _PORT_KEYS or str(parent) in _PORT_KEYS
    if kind in ("greater_than_equal", "less_than_equal") and is_port:
        return f"a port must be between 1 and 65535, got {value}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}, got {value}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}, got {value}"
    if kind == "greater_than":
        return f"must be greater than {ctx.get('gt')}, got {value}"
    if kind == "less_than":
        return f"must be less than {ctx.get('lt')}, got {value}"
    if kind == "too_short":
        if isinstance(value, str):
            return "must not be empty"
        count = ctx.get("min_length", 1)
        return f"needs at least {count} item{'s' if count != 1 else ''}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_pattern_mismatch":
        what = "name" if e.on_key else "value"
        advice = _PATTERN_MESSAGES.get(str(ctx.get("pattern")), f"must match {ctx.get('pattern')}")
        return f"invalid {what} {_describe(value)}: {advice}"
    return str(err["msg"])


def _unwrap(tp: Any) -> list[Any]:
    """The concrete alternatives of a type: Annotated and unions flattened."""
    origin = get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [alt for arg in get_args(tp) for alt in _unwrap(arg)]
    return [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _models_at(path: KeyPath) -> list[type[BaseModel]]:
    """The model classes that can sit at ``path`` of a project document."""
    current: list[Any] = [Project]
    for part in path:
        following: list[Any] = []
        for tp in current:
            for alt in _unwrap(tp):
                origin = get_origin(alt)
                if _is_model(alt) and isinstance(part, str):
                    for fname, info in alt.model_fields.items():
                        if part in (fname, info.alias):
                            following.append(info.annotation)
                elif origin is dict and isinstance(part, str):
                    following.append(get_args(alt)[1])
                elif origin is list and isinstance(part, int):
                    following.append(get_args(alt)[0])
        current = following
    return [alt for tp in current for alt in _unwrap(tp) if _is_model(alt)]


def _key_hint(key: str, parent: KeyPath) -> str:
    known: list[str] = []
    for model in _models_at(parent):
        for fname, info in model.model_fields.items():
            known.append(info.alias or fname)
    known = list(dict.fromkeys(known))
    if not known:
        return " (this mapping takes no keys; prefix your own keys with 'x-')"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; expected one of: {', '.join(known)} (prefix your own keys with 'x-')"
