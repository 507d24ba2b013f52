"""Loading valid project files: YAML traps, .env values, BOM/CRLF, x- keys, anchors, profiles."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from devster_tui.config.errors import ConfigErrors
from devster_tui.config.loader import LoadedProject, load_project
from devster_tui.config.yamlsrc import MAX_NODES, parse_yaml

BCRYPT = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"


def _write(tmp_path: Path, text: str | bytes, name: str = "devster.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _load(tmp_path: Path, text: str | bytes, **environ: str) -> LoadedProject:
    return load_project(_write(tmp_path, text), environ=environ)


def test_yaml11_trap_values_reach_env_exactly_as_written(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        "tasks:\n  api:\n    cmd: [python, 1.10, 0755]\n    env:\n"
        "      A: NO\n      B: on\n      C: 1.10\n      D: 0755\n      E: true\n"
        "      F: yes\n      G: 1e3\n      H: 0x1F\n      I: '0755'\n      J: 12:30\n",
    )
    task = loaded.project.tasks["api"]
    assert task.env == {
        "A": "NO",
        "B": "on",
        "C": "1.10",
        "D": "0755",
        "E": "true",
        "F": "yes",
        "G": "1e3",
        "H": "0x1F",
        "I": "0755",
        "J": "12:30",
    }
    assert all(type(v) is str for v in task.env.values())
    assert task.cmd == ["python", "1.10", "0755"]


def test_dotenv_bcrypt_hash_and_dollars_arrive_byte_exact(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"HASH={BCRYPT}\nPASS='pa$$w0rd$(x)'\nexport QUOTED=\"a$b\"\n", encoding="utf-8"
    )
    loaded = _load(
        tmp_path,
        "env_file: .env\ntasks:\n  api:\n    cmd: x\n    env:\n"
        "      HASH: ${HASH}\n      PASS: ${PASS}\n      QUOTED: ${QUOTED}\n",
    )
    assert loaded.project.tasks["api"].env == {
        "HASH": BCRYPT,
        "PASS": "pa$$w0rd$(x)",
        "QUOTED": "a$b",
    }
    assert loaded.variables["HASH"] == BCRYPT


def test_process_environment_overrides_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("WHO=file\nONLY_FILE=1\n", encoding="utf-8")
    text = "env_file: .env\ntasks:\n  api: {cmd: 'echo ${WHO}'}\n"
    loaded = _load(tmp_path, text, WHO="environment")
    assert loaded.project.tasks["api"].cmd == "echo environment"
    assert loaded.variables["WHO"] == "environment"
    assert loaded.variables["ONLY_FILE"] == "1"


def test_env_file_path_is_interpolated_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "prod.env").write_text("STAGE=prod\n", encoding="utf-8")
    loaded = _load(
        tmp_path,
        "env_file: ${STAGE_FILE:-dev.env}\ntasks:\n  api: {cmd: x}\n",
        STAGE_FILE="prod.env",
    )
    assert loaded.variables["STAGE"] == "prod"


def test_dollar_forms_shell_snippets_and_engine_references_pass(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        "tasks:\n  api:\n    cmd: echo $(date) $HOME $$ $${X} ${ports.http}"
        " ${MISSING:-dflt}\n    ports: {http: 8080}\n    env: {DB: '${secret:db}'}\n"
        "secrets:\n  db: {env: DB_PASSWORD}\n",
    )
    assert loaded.project.tasks["api"].cmd == "echo $(date) $HOME $ ${X} ${ports.http} dflt"
    assert loaded.project.tasks["api"].env["DB"] == "${secret:db}"


def test_interpolated_plain_scalars_stay_typed_like_written_text(tmp_path: Path) -> None:
    text = "tasks:\n  api:\n    cmd: x\n    ports:\n      http: ${PORT}\n    autostart: ${AUTO}\n"
    loaded = _load(tmp_path, text, PORT="8080", AUTO="false")
    assert loaded.project.tasks["api"].ports == {"http": 8080}
    assert loaded.project.tasks["api"].autostart is False
    with pytest.raises(ConfigErrors) as caught:
        _load(tmp_path, text, PORT="8080", AUTO="yes")
    assert "expected true or false, got 'yes'" in str(caught.value)


def test_bom_and_crlf_file_loads_with_correct_positions(tmp_path: Path) -> None:
    text = "version: 1\r\ntasks:\r\n  api:\r\n    cmd: 'echo hi'\r\n    kind: job\r\n"
    loaded = _load(tmp_path, b"\xef\xbb\xbf" + text.encode())
    assert loaded.project.tasks["api"].cmd == "echo hi"
    assert loaded.project.tasks["api"].kind == "job"
    assert loaded.source_map is not None
    pos = loaded.source_map.value(("tasks", "api", "kind"))
    assert pos is not None and (pos.line, pos.col) == (5, 11)


def test_x_keys_are_dropped_at_every_depth_and_anchors_reused(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        "x-defaults: &defaults\n  kind: job\n  env: {A: '1'}\n"
        "tasks:\n  x-note: free text\n  build:\n    <<: *defaults\n    cmd: make\n"
        "    x-owner: me\n    env: {B: '2', x-comment: hi}\n",
    )
    assert set(loaded.project.tasks) == {"build"}
    build = loaded.project.tasks["build"]
    assert build.kind == "job"
    assert build.env == {"B": "2"}  # the explicit key wins over the merged one


def test_merge_list_takes_earlier_sources_first(tmp_path: Path) -> None:
    data, _ = parse_yaml("a: &a {k: 1, x: a}\nb: &b {k: 2, y: b}\nc:\n  <<: [*a, *b]\n", "f")
    assert data["c"] == {"k": "1", "x": "a", "y": "b"}


def test_aliased_values_are_positioned_at_the_alias(tmp_path: Path) -> None:
    _, source_map = parse_yaml("a: &v hello\nb: *v\n", "f")
    pos = source_map.value(("b",))
    assert pos is not None and (pos.line, pos.col) == (2, 4)


def test_all_errors_of_a_file_are_reported_in_one_run(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "tasks:\n"
        "  api:\n"
        "    cmnd: x\n"  # 3: unknown key
        "    stop: {timeout: 10 parsecs}\n"  # 4: bad duration
        "    env: {URL: '${NOPE}'}\n"  # 5: unset variable (at its `${`)
        "    autostart: on\n"  # 6: YAML 1.1 bool
        "    ports: {http: 70000}\n"  # 7: port range
        "    depends_on: [ghost]\n",  # 8: unknown task (semantic; reported with the rest)
    )
    with pytest.raises(ConfigErrors) as caught:
        load_project(path, environ={})
    found = [(e.line, e.col) for e in caught.value.errors]
    assert found == [(3, 5), (4, 21), (5, 17), (6, 16), (7, 19), (8, 18)]


def test_unknown_dependency_of_a_valid_model_points_at_the_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "tasks:\n  api:\n    cmd: x\n    depends_on: [ghost]\n")
    with pytest.raises(ConfigErrors) as caught:
        load_project(path, environ={})
    assert [(e.line, e.col) for e in caught.value.errors] == [(4, 18)]
    assert "unknown task 'ghost'" in caught.value.errors[0].message


def test_alias_bomb_is_rejected_fast_and_small(tmp_path: Path) -> None:
    text = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]\n"
    started = time.perf_counter()
    with pytest.raises(ConfigErrors) as caught:
        parse_yaml(text, "bomb.yaml")
    elapsed = time.perf_counter() - started
    assert f"more than {MAX_NODES} values" in str(caught.value)
    assert elapsed < 1.0
    tracemalloc.start()
    try:
        with pytest.raises(ConfigErrors):
            parse_yaml(text, "bomb.yaml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 1024 * 1024


def test_deep_nesting_is_an_error_not_a_recursion_crash(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as caught:
        parse_yaml("a: " + "[" * 5000 + "]" * 5000 + "\n", "deep.yaml")
    assert "nested more than" in str(caught.value)


def test_project_name_defaults_to_directory_name(tmp_path: Path) -> None:
    project_dir = tmp_path / "shop"
    project_dir.mkdir()
    loaded = _load(project_dir, "tasks:\n  api: {cmd: x}\n")
    assert loaded.project.name == "shop"
    assert loaded.root == project_dir.absolute()
    assert loaded.file == (project_dir / "devster.yaml").absolute()
    named = _load(project_dir, "project: store\ntasks:\n  api: {cmd: x}\n")
    assert named.project.name == "store"


def test_profiles_are_file_defaults_then_requested(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "profiles: [base]\ntasks:\n  api: {cmd: x}\n  debug: {cmd: y, profiles: [debug]}\n",
    )
    loaded = load_project(path, ["debug", "base"], environ={})
    assert loaded.profiles == ("base", "debug")
    with pytest.raises(ConfigErrors) as caught:
        load_project(path, ["debgu"], environ={})
    assert "unknown profile 'debgu'; did you mean 'debug'?" in str(caught.value)


def test_missing_task_env_file_is_an_error_before_start(tmp_path: Path) -> None:
    path = _write(tmp_path, "tasks:\n  api:\n    cmd: x\n    env_file: [ok.env, gone.env]\n")
    (tmp_path / "ok.env").write_text("A=1\n", encoding="utf-8")
    with pytest.raises(ConfigErrors) as caught:
        load_project(path, environ={})
    [error] = caught.value.errors
    assert error.path == ("tasks", "api", "env_file", 1)
    assert (error.line, error.col) == (4, 24)


def test_malformed_dotenv_line_is_reported_in_the_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=1\nnot a variable\n", encoding="utf-8")
    path = _write(tmp_path, "env_file: .env\ntasks:\n  api: {cmd: x}\n")
    with pytest.raises(ConfigErrors) as caught:
        load_project(path, environ={})
    [error] = caught.value.errors
    assert error.file.endswith(".env") and (error.line, error.col) == (2, 1)


def test_python_project_file_goes_through_the_same_checks(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "from devster_tui import Project, Task\n"
        "project = Project(tasks={f'w{i}': Task(cmd=['sleep', str(i)]) for i in range(3)})\n",
        name="devster.py",
    )
    loaded = load_project(path, environ={})
    assert sorted(loaded.project.tasks) == ["w0", "w1", "w2"]
    assert loaded.source_map is None
    assert loaded.project.name == tmp_path.name
    bad = _write(
        tmp_path,
        "from devster_tui import Project, Task\n"
        "project = Project(tasks={'a': Task(cmd='x', depends_on=['a'])})\n",
        name="bad.py",
    )
    with pytest.raises(ConfigErrors) as caught:
        load_project(bad, environ={})
    assert "depends on itself" in str(caught.value)


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as caught:
        load_project(tmp_path / "nope.yaml", environ={})
    assert "cannot read" in str(caught.value)
