"""``devster validate`` and ``devster schema`` end to end, in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema

ERROR_LINE = re.compile(
    r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<path>[^:]+): (?P<msg>.+)$"
)

VALID = """\
# yaml-language-server: $schema=./devster.schema.json
version: 1
project: shop
x-common: &common {restart: on-failure}
environments:
  dev: {layers: [local]}
observers:
  src: {files: {paths: [src/], ignore: ["**/*.pyc"], debounce: 200ms}}
  gate: {manual: {prompt: "Run integration tests?"}}
tasks:
  build: {cmd: make build, kind: job, triggers: [src]}
  db: {cmd: [postgres, -D, ./data], health: {tcp: 5432, interval: 1s}}
  api:
    <<: *common
    cmd: [python, -m, api, --port, "${ports.http}"]
    ports: {http: 8080}
    depends_on:
      build: {condition: succeeded, on_restart: restart}
      db: {condition: healthy}
    env: {DEBUG: "NO", LEVEL: "1.10"}
    stop: {signal: SIGTERM, timeout: 10s}
    health: {http: "http://127.0.0.1:${ports.http}/health", interval: 2s, retries: 3}
  errors: {cmd: grep --line-buffered ERROR, stdin: {from: api.stderr}}
  integration:
    cmd: pytest tests/integration
    kind: job
    triggers: [gate]
    depends_on: {api: {condition: healthy}}
"""


def _devster(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "DEVSTER_FILE"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "devster_tui", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_validate_valid_file_exits_0_with_one_summary_line(tmp_path: Path) -> None:
    (tmp_path / "devster.yaml").write_text(VALID, encoding="utf-8")
    result = _devster("validate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "devster.yaml: valid: 5 tasks, 2 observers, 1 environment\n"
    assert result.stderr == ""


def test_validate_finds_the_file_in_a_parent_directory(tmp_path: Path) -> None:
    (tmp_path / "devster.yaml").write_text(VALID, encoding="utf-8")
    sub = tmp_path / "src" / "deep"
    sub.mkdir(parents=True)
    result = _devster("validate", cwd=sub)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("valid: 5 tasks, 2 observers, 1 environment\n")


def test_validate_invalid_file_exits_2_with_one_error_per_line(tmp_path: Path) -> None:
    (tmp_path / "devster.yaml").write_text(
        "tasks:\n  api:\n    cmnd: x\n    stop: {timeout: -1s}\n", encoding="utf-8"
    )
    result = _devster("validate", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    parsed = [ERROR_LINE.match(line) for line in lines]
    assert all(parsed), lines
    first, second = (m.groupdict() for m in parsed if m)
    assert (first["file"], first["line"], first["col"]) == ("devster.yaml", "3", "5")
    assert first["path"] == "tasks.api.cmnd" and "did you mean 'cmd'" in first["msg"]
    assert (second["line"], second["col"], second["path"]) == ("4", "21", "tasks.api.stop.timeout")


def test_validate_with_f_and_devster_file(tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("tasks:\n  a: {cmd: x}\n", encoding="utf-8")
    by_flag = _devster("validate", "-f", "other.yaml", cwd=tmp_path)
    assert by_flag.returncode == 0 and by_flag.stdout.startswith("other.yaml: valid: 1 task,")
    by_env = _devster("validate", cwd=tmp_path, env={"DEVSTER_FILE": str(other)})
    assert by_env.returncode == 0, by_env.stderr


def test_validate_without_project_file_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    result = _devster("validate", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("devster: no project file")
    missing = _devster("validate", "-f", "nope.yaml", cwd=tmp_path)
    assert missing.returncode == 2 and "nope.yaml: no such file" in missing.stderr


def test_validate_unknown_profile_exits_2(tmp_path: Path) -> None:
    (tmp_path / "devster.yaml").write_text(VALID, encoding="utf-8")
    result = _devster("validate", "--profile", "nope", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown profile 'nope'" in result.stderr


def test_schema_is_json_with_dialect_and_validates_a_real_project(tmp_path: Path) -> None:
    result = _devster("schema", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["title"] == "devster project file"
    jsonschema.Draft202012Validator.check_schema(schema)
    from ruamel.yaml import YAML

    document = YAML(typ="safe", pure=True).load(VALID)
    validator = jsonschema.Draft202012Validator(schema)
    assert [e.message for e in validator.iter_errors(document)] == []
    document["tasks"]["api"]["cmnd"] = "typo"
    assert list(validator.iter_errors(document)), "unknown keys must fail the schema too"


def test_schema_bounds_use_json_schema_keywords(tmp_path: Path) -> None:
    schema = json.loads(_devster("schema", cwd=tmp_path).stdout)
    text = json.dumps(schema)
    assert '"ge"' not in text and '"le"' not in text
    ports = schema["$defs"]["Task"]["properties"]["ports"]["additionalProperties"]
    assert (ports["minimum"], ports["maximum"]) == (1, 65535)
