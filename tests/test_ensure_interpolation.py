"""An ``ensure`` template accepts every ``${...}`` form a project file does, with its errors.

Before, templates had their own small grammar (``${VAR}``, ``:-``, ``:?`` and ``$$``):
``${VAR-x}`` or ``${VAR:+x}`` were left in the rendered file as written, and a bad reference
failed with a different message than the same reference in the project file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devster_tui.config.errors import ConfigErrors
from devster_tui.config.interpolate import InterpolationError, interpolate
from devster_tui.config.loader import load_project
from devster_tui.config.schema import EnsureStep
from devster_tui.engine.ensure import EnsureError, run_ensure
from devster_tui.engine.interp import render_template
from tests.helpers import devster_cli

TEMPLATE = """\
a=${DV_SET-x} b=${DV_UNSET-dflt} c=[${DV_EMPTY-dflt}] d=${DV_EMPTY:-dflt}
e=${DV_SET:+on} f=[${DV_EMPTY:+on}] g=${DV_EMPTY+on} h=[${DV_UNSET+on}]
i=${DV_UNSET:-${ports.http}} j=$$5 k=$HOME l=${secret:db} m=${DV_SET?need} n=[${DV_EMPTY?need}]
"""

RENDERED = """\
a=val b=dflt c=[] d=dflt
e=on f=[] g=on h=[]
i=18123 j=$5 k=$HOME l=${secret:db} m=val n=[]
"""

PROJECT = """\
tasks:
  job:
    kind: job
    cmd: cat out.conf
    env: {DV_SET: val, DV_EMPTY: ""}
    ports: {http: 18123}
    ensure:
      - template: {src: conf.tpl, dest: out.conf}
"""


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DV_")}


def test_a_template_renders_every_form_of_the_config_grammar(tmp_path: Path) -> None:
    (tmp_path / "devster.yaml").write_text(PROJECT, encoding="utf-8")
    (tmp_path / "conf.tpl").write_text(TEMPLATE, encoding="utf-8")
    done = devster_cli("run", "job", cwd=tmp_path, env=_environ())
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "out.conf").read_text(encoding="utf-8") == RENDERED
    printed = [line.split("| ", 1)[1] for line in done.stdout.splitlines() if "| " in line]
    assert printed == RENDERED.splitlines()


def _loader_message(tmp_path: Path, value: str, environ: dict[str, str]) -> str:
    """The message the loader gives for ``value`` written as a task's env value."""
    file = tmp_path / "devster.yaml"
    file.write_text(f"tasks:\n  t:\n    cmd: x\n    env: {{V: {json.dumps(value)}}}\n")
    with pytest.raises(ConfigErrors) as caught:
        load_project(file, environ=environ)
    [error] = caught.value.errors
    assert error.path == ("tasks", "t", "env", "V")
    return error.message


def _ensure_message(tmp_path: Path, text: str, variables: dict[str, str]) -> str:
    """The message a template holding ``text`` fails with, after the step's name."""
    (tmp_path / "t.tpl").write_text(text, encoding="utf-8")
    step = EnsureStep.model_validate({"template": {"src": "t.tpl", "dest": "t.out"}})
    with pytest.raises(EnsureError) as caught:
        run_ensure([step], tmp_path, variables, {"http": 8080})
    assert not (tmp_path / "t.out").exists()
    prefix = "ensure[0] template t.tpl: "
    assert str(caught.value).startswith(prefix)
    return str(caught.value)[len(prefix) :]


@pytest.mark.parametrize(
    "reference",
    [
        "${DV_NOPE}",
        "x ${DV_NOPE:?set DV_NOPE first}",
        "${DV_EMPTY:?}",
        "${DV_NOPE?}",
        "${DV_NOPE:-${DV_DEEP}}",
        "${1X}",
        "${DV_SET B}",
        "${DV_SET:x}",
        "${}",
        "cost ${DV_SET",
    ],
)
def test_a_bad_reference_fails_with_the_loaders_message(tmp_path: Path, reference: str) -> None:
    variables = {"DV_SET": "v", "DV_EMPTY": ""}
    expected = _loader_message(tmp_path, reference, variables)
    assert _ensure_message(tmp_path, reference, variables) == expected


def _outcome(render: Callable[[], str]) -> tuple[str, str]:
    try:
        return "ok", render()
    except InterpolationError as exc:
        return "error", exc.message


@given(st.text(alphabet="${}:-?+ AB_1x\n", max_size=24))
def test_a_template_and_a_config_value_agree_on_any_text(text: str) -> None:
    # One grammar: without ${ports.}/${secret:}, rendering is the loader's interpolation.
    variables = {"A": "a$", "B": ""}
    assert _outcome(lambda: render_template(text, variables, {})) == _outcome(
        lambda: interpolate(text, variables)
    )


def test_a_template_naming_an_undeclared_port_fails_naming_the_declared_ones(
    tmp_path: Path,
) -> None:
    message = _ensure_message(tmp_path, "listen ${DV_PORT:-${ports.grpc}}\n", {})
    assert message == "${ports.grpc}: no port 'grpc' (declared: http)"


def test_an_unclosed_reference_in_a_long_template_quotes_its_line_not_the_file(
    tmp_path: Path,
) -> None:
    text = "# generated\n" * 200 + "server ${DV_HOST\n" + "# more\n" * 200
    message = _ensure_message(tmp_path, text, {})
    assert message == "unclosed '${' in '${DV_HOST' (missing '}')"


def test_the_task_fails_before_it_spawns_with_the_loaders_message(tmp_path: Path) -> None:
    (tmp_path / "devster.yaml").write_text(PROJECT, encoding="utf-8")
    (tmp_path / "conf.tpl").write_text("x ${DV_NOPE:?set DV_NOPE first}\n", encoding="utf-8")
    done = devster_cli("run", "job", cwd=tmp_path, env=_environ())
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "failed: ensure[0] template conf.tpl: variable DV_NOPE is not set: set DV_NOPE first"
        in done.stdout
    )
    assert "started" not in done.stdout
    # The same reference in the project file: `devster validate` says the same thing.
    (tmp_path / "devster.yaml").write_text(
        PROJECT.replace('DV_EMPTY: ""}', 'DV_EMPTY: "", V: "x ${DV_NOPE:?set DV_NOPE first}"}'),
        encoding="utf-8",
    )
    done = devster_cli("validate", cwd=tmp_path, env=_environ())
    assert done.returncode != 0
    assert "tasks.job.env.V: variable DV_NOPE is not set: set DV_NOPE first" in (
        done.stdout + done.stderr
    )
