"""Table-driven suite: every file in tests/data/broken/ fails with an error at an exact place."""

from __future__ import annotations

from pathlib import Path

import pytest

from devster_tui.config.errors import ConfigError, ConfigErrors
from devster_tui.config.loader import load_project

BROKEN = Path(__file__).parent / "data" / "broken"

# (file, line, column, fragment of "key.path: message").  Every file in BROKEN is listed.
CASES: list[tuple[str, int, int, str]] = [
    # Duplicate and unknown keys
    ("duplicate-key.yaml", 5, 5, "tasks.api.cmd: duplicate key 'cmd': first at line 3 column 5"),
    ("duplicate-task.yaml", 4, 3, "tasks.api: duplicate key 'api': first at line 2 column 3"),
    ("duplicate-key-flow.yaml", 2, 35, "duplicate key 'A': first at line 2 column 23, again at"),
    ("unknown-top-key.yaml", 2, 1, "taks: unknown key 'taks'; did you mean 'tasks'?"),
    ("unknown-task-key.yaml", 3, 5, "tasks.api.cmnd: unknown key 'cmnd'; did you mean 'cmd'?"),
    ("unknown-dependency-key.yaml", 6, 12, "did you mean 'condition'?"),
    ("unknown-layer-key.yaml", 4, 18, "layers[0].docker.imge: unknown key 'imge'; did you mean"),
    ("unknown-health-key.yaml", 6, 7, "unknown key 'intervall'; did you mean 'interval'?"),
    ("unknown-backoff-key.yaml", 6, 17, "backoff.maxx: unknown key 'maxx'; did you mean 'max'?"),
    ("unknown-key-no-suggestion.yaml", 4, 12, "expected one of: signal, timeout, command"),
    # Wrong types
    ("cmd-mapping.yaml", 3, 10, "tasks.api.cmd: expected a string or a list, got a mapping"),
    ("env-list.yaml", 4, 10, "tasks.api.env: expected a mapping, got a list"),
    ("tasks-list.yaml", 2, 3, "tasks: expected a mapping, got a list"),
    ("task-not-mapping.yaml", 2, 8, "tasks.api: expected a mapping, got 'make run'"),
    ("exit-codes-not-list.yaml", 5, 25, "success_exit_codes: expected a list, got '0'"),
    # Exit statuses are 0-255 (issue 12 item 7: [256] and [-1] passed validation)
    ("exit-code-256.yaml", 5, 29, "success_exit_codes[1]: must be at most 255, got 256"),
    ("exit-code-negative.yaml", 5, 26, "success_exit_codes[0]: must be at least 0, got -1"),
    ("ssh-port-not-number.yaml", 4, 30, "ssh.port: expected an integer, got 'twenty-two'"),
    ("bool-yes.yaml", 4, 16, "tasks.api.autostart: expected true or false, got 'yes'"),
    ("bool-off.yaml", 5, 24, "default_ignores: expected true or false, got 'off'"),
    # Durations, signals, ports, ranges
    ("duration-negative.yaml", 4, 21, "invalid duration '-1s'"),
    ("duration-parsecs.yaml", 3, 37, "invalid duration '10 parsecs'"),
    ("duration-unitless.yaml", 4, 51, "invalid duration '5'"),
    ("signal-unknown.yaml", 5, 15, "tasks.api.stop.signal: unknown signal 'SIGFOO'"),
    ("port-zero.yaml", 4, 19, "ports.http: a port must be between 1 and 65535, got 0"),
    ("port-too-big.yaml", 5, 13, "ports.http: a port must be between 1 and 65535, got 70000"),
    ("health-tcp-too-big.yaml", 4, 19, "health.tcp: a port must be between 1 and 65535"),
    ("jitter-too-big.yaml", 4, 49, "backoff.jitter: must be at most 1.0, got 2"),
    ("interval-zero.yaml", 3, 23, "an interval must be longer than 0"),
    ("version-2.yaml", 1, 10, "version: unsupported version 2"),
    # Enumerations
    ("kind-enum.yaml", 4, 11, "got 'servce'; did you mean 'service'?"),
    ("condition-enum.yaml", 6, 23, "depends_on.db.condition: expected one of started, healthy"),
    ("restart-policy-enum.yaml", 4, 14, "expected one of no, on-failure, always, got 'sometimes'"),
    # One-of rules
    ("layer-two-kinds.yaml", 4, 9, "layers[0]: a layer needs exactly one of local, docker, ssh"),
    ("layer-empty.yaml", 5, 9, "layers[1]: a layer needs exactly one of local, docker, ssh"),
    ("layer-unknown-text.yaml", 3, 14, "a layer written as text must be 'local', got 'remote'"),
    ("docker-layer-two-modes.yaml", 4, 17, "a docker layer takes only one of container, image"),
    ("docker-build-missing-tag.yaml", 5, 11, "docker.build: missing required key 'tag'"),
    ("observer-none.yaml", 2, 9, "observers.gate: an observer needs exactly one of files"),
    ("observer-two-kinds.yaml", 3, 5, "got ['manual', 'interval']"),
    ("observer-empty-paths.yaml", 3, 20, "files.paths: needs at least 1 item"),
    ("observer-bad-regex.yaml", 5, 31, "log.pattern: invalid regular expression"),
    ("task-name-dot.yaml", 2, 3, "invalid name 'api.v2': use letters, digits"),
    ("stdin-bad-ref.yaml", 5, 19, "expected TASK, TASK.stdout or TASK.stderr"),
    # Interpolation and .env
    ("unset-variable.yaml", 5, 26, "tasks.api.env.DB_URL: variable DB_HOST is not set"),
    ("required-variable.yaml", 5, 15, "variable API_TOKEN is not set: set API_TOKEN in .env"),
    ("bad-variable-name.yaml", 3, 15, "invalid variable reference '${1X}'"),
    ("unclosed-variable.yaml", 3, 15, "unclosed '${'"),
    ("missing-env-file.yaml", 1, 11, "env_file: cannot read does-not-exist.env: no such file"),
    # YAML syntax and encoding
    ("tabs.yaml", 3, 1, "tab character: YAML indentation must use spaces"),
    ("crlf-tabs.yaml", 3, 1, "tab character"),
    ("unclosed-quote.yaml", 3, 10, "unclosed quote"),
    ("bad-indent.yaml", 4, 4, "bad indentation"),
    ("unexpected-colon.yaml", 3, 16, "unexpected ':'"),
    ("unclosed-flow.yaml", 3, 5, "is the '{' opened at line 2 column 8 closed?"),
    ("bom-error.yaml", 4, 11, "tasks.api.kind: expected one of service, job"),
    ("crlf-error.yaml", 4, 21, "tasks.api.stop.timeout: invalid duration '10 parsecs'"),
    ("non-utf8.yaml", 3, 18, "not valid UTF-8: byte 0xe9 at byte offset 31"),
    ("utf16.yaml", 1, 1, "the file looks UTF-16 encoded"),
    ("alias-bomb.yaml", 11, 29, "expands to more than 100000 values"),
    ("recursive-alias.yaml", 2, 8, "alias *t is used inside its own anchor"),
    ("unknown-alias.yaml", 2, 8, "unknown alias *base"),
    ("merge-scalar.yaml", 3, 5, "'<<' merges a mapping or a list of mappings"),
    ("non-string-key.yaml", 2, 3, "a key must be text"),
    ("unsupported-tag.yaml", 2, 8, "unsupported YAML tag !include"),
    ("two-documents.yaml", 3, 1, "a second YAML document"),
    ("top-level-list.yaml", 1, 1, "the top level must be a mapping (key: value), got a list"),
    ("top-level-scalar.yaml", 1, 1, "the top level must be a mapping"),
    ("empty.yaml", 1, 1, "the file is empty"),
    ("comments-only.yaml", 1, 1, "the file is empty"),
    # Semantic checks (config.checks)
    ("depends-unknown-task.yaml", 4, 18, "unknown task 'dbb'; did you mean 'db'?"),
    ("depends-self.yaml", 4, 18, "task 'api' depends on itself"),
    ("depends-cycle.yaml", 4, 18, "dependency cycle: a -> b -> c -> a"),
    ("trigger-unknown-observer.yaml", 4, 44, "unknown observer 'srcs'; did you mean 'src'?"),
]


def _errors(name: str) -> list[ConfigError]:
    with pytest.raises(ConfigErrors) as caught:
        load_project(BROKEN / name, environ={})
    return caught.value.errors


def test_broken_table_lists_every_file_and_has_at_least_45() -> None:
    listed = [name for name, *_ in CASES]
    assert len(listed) == len(set(listed)), "a file is listed twice"
    on_disk = sorted(p.name for p in BROKEN.glob("*.yaml"))
    assert sorted(listed) == on_disk
    assert len(on_disk) >= 45


@pytest.mark.parametrize(("name", "line", "col", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_broken_file_reports_error_at_exact_position(
    name: str, line: int, col: int, fragment: str
) -> None:
    errors = _errors(name)
    shown = "\n".join(str(e) for e in errors)
    assert any(e.line == line and e.col == col and fragment in str(e) for e in errors), shown
    for error in errors:
        assert str(error).startswith(f"{BROKEN / name}:"), "errors name the file as given"
