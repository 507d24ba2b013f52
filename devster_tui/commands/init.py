"""``devster init``: write a commented starter ``devster.yaml`` that validates and runs.

The starter is a tiny working system rather than a list of placeholders: a build job re-run
by a file observer, an HTTP service that waits for the build and has a health check and a
restart policy, and a smoke test behind a manual gate.  It needs only ``/bin/sh`` and a
``python3`` with its standard library, so ``devster run smoke`` works on a fresh machine;
the comments name the concepts, and the user replaces the commands with their own.

The file is created with ``O_EXCL``: an existing project file (``devster.yaml``,
``devster.yml`` or ``devster.py``, which devster would find first or instead) is never
overwritten, and the command exits 2 with one line saying so.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from pathlib import Path

from devster_tui.errors import ExitCode

FILE_NAME = "devster.yaml"
"""The file written."""
PROJECT_FILES = ("devster.yaml", "devster.yml", "devster.py")
"""The names devster looks for (config.discover.CANDIDATES, not imported: pydantic-free
but kept literal so that this module stays standard-library only)."""

_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
_YAML_WORDS = {"null", "true", "false", "yes", "no", "on", "off", "y", "n"}

STARTER = """\
# devster.yaml of @NAME@, written by `devster init`.  Next:
#   devster validate      check this file (every problem, with its line and column)
#   devster graph         the task graph: dependencies, triggers, pipes
#   devster up            run it in the cockpit (or headless: devster up --no-tui)
#   devster run smoke     build, start the server, run the smoke test, stop everything
# Every key is in docs/configuration.md; for completion in your editor:
#   devster schema > devster.schema.json  (then see "Editor support" there).
# Keys starting with x- are yours (notes, YAML anchors); any other unknown key is an error.
version: 1
project: @PROJECT@

# Observers fire triggers: a task that lists one in `triggers` (re-)runs when it fires.
observers:
  sources:
    description: a file under src/ changed
    files:
      paths: [src/]          # relative to this file; it may not exist yet
      debounce: 200ms        # a burst of saves fires once, after 200ms of quiet
  go:
    description: a manual gate, approved with `a` in the cockpit or `devster trigger go`
    manual: {prompt: "Run the smoke test against the server?"}

tasks:
  # A job is expected to finish: exit 0 (or a code in success_exit_codes) is success.
  # A command is a string (run by /bin/sh -c) or a list (an argv, without a shell).
  build:
    description: writes build/index.html; runs at start and again on every change in src/
    kind: job
    cmd: mkdir -p build && printf '<h1>built %s</h1>\\n' "$(date)" > build/index.html
    triggers: [sources]
    timeout: 1m              # a run that takes longer is killed and fails

  # A service is expected to keep running (kind: service is the default).
  server:
    description: serves build/ on http://127.0.0.1:${HTTP_PORT:-8080}/
    cmd: [python3, -m, http.server, "${ports.http}", --bind, 127.0.0.1, --directory, build]
    ports:
      # ${VAR:-default} reads the environment: HTTP_PORT=9000 devster up
      http: "${HTTP_PORT:-8080}"
    depends_on:
      # Start once the build has succeeded; every re-build restarts the server.
      build: {condition: succeeded, on_restart: restart}
    health:                  # `healthy` once GET / answers; dependents can wait for it
      http: "http://127.0.0.1:${ports.http}/"
      interval: 1s
      retries: 3
    restart:                 # after a crash: wait 0.5s, 1s, 2s ...; the 6th crash in 1m fails it
      policy: on-failure
      backoff: {initial: 500ms, max: 10s}
      max_restarts: 5
      window: 1m
    stop: {signal: SIGTERM, timeout: 5s}

  # A gated test: it waits for a healthy server AND for your approval of the `go` gate.
  # `devster run smoke` approves it by naming it, and stops the server afterwards.
  smoke:
    description: fetches the page the server serves
    kind: job
    cmd: >-
      python3 -c "import urllib.request as r;
      page = r.urlopen('http://127.0.0.1:${HTTP_PORT:-8080}/', timeout=5).read().decode();
      print(page.strip()); assert 'built' in page, 'no build stamp in the page'"
    depends_on:
      server: {condition: healthy}
    triggers: [go]
    timeout: 30s

  # More: a task reading another's output (stdin: server.stderr), environments and
  # layers (run in docker or over ssh), profiles, secrets: see docs/.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``-f/--file DIR``."""
    parser.add_argument(
        "-f",
        "--file",
        metavar="DIR",
        help="the directory to write devster.yaml in (default: the current directory; "
        "created if missing), or a FILE.yaml to write",
    )


def project_name(directory: Path) -> str:
    """The project name written for ``directory``: its name (``project`` for ``/``)."""
    return directory.resolve().name or "project"


def _yaml_text(text: str) -> str:
    """``text`` as a YAML scalar: plain when that reads back as the same text, else quoted."""
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


def starter(name: str) -> str:
    """The starter file for a project called ``name``."""
    return STARTER.replace("@PROJECT@", _yaml_text(name)).replace("@NAME@", name)


def target_of(chosen: str | None) -> Path:
    """The file to write: ``devster.yaml`` in the directory ``chosen`` (default: here), or
    ``chosen`` itself when it names a ``.yaml``/``.yml`` file (``devster init -f ci.yaml``)."""
    if chosen is None:
        return Path(FILE_NAME)
    path = Path(chosen)
    if path.suffix in (".yaml", ".yml") and not path.is_dir():
        return path
    return path / FILE_NAME


def _refusal(target: Path) -> str | None:
    """Why ``target`` may not be written, if anything is in the way.

    Next to a ``devster.yaml`` (or ``.yml``) any project file devster would find is in the
    way, since the new file would hide it or be hidden by it.
    """
    directory = target.parent
    if directory.exists() and not directory.is_dir():
        return f"{directory}: not a directory; nothing written"
    in_the_way = (
        [directory / name for name in PROJECT_FILES] if target.name in PROJECT_FILES else []
    )
    for candidate in [target, *in_the_way]:
        if candidate.exists() or candidate.is_symlink():
            return f"{candidate} already exists; nothing written"
    return None


def run(args: argparse.Namespace) -> int:
    """Write the starter file; print what was written and what to run next."""
    target = target_of(args.file)
    refusal = _refusal(target)
    if refusal is not None:
        sys.stderr.write(f"devster init: {refusal}\n")
        return ExitCode.CONFIG
    name = project_name(target.parent)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "x", encoding="utf-8") as out:
            out.write(starter(name))
    except FileExistsError:
        sys.stderr.write(f"devster init: {target} already exists; nothing written\n")
        return ExitCode.CONFIG
    except OSError as exc:
        sys.stderr.write(f"devster init: {target}: {exc.strerror or exc}; nothing written\n")
        return ExitCode.CONFIG
    _report(target, name, args.file)
    return ExitCode.OK


def _report(target: Path, name: str, chosen: str | None) -> None:
    where = "" if chosen is None else f" -f {shlex.quote(chosen)}"
    steps = (
        (f"devster validate{where}", "check it"),
        (f"devster run{where} smoke", "build, start the server, test it, stop"),
        (f"devster up{where}", "the cockpit (press a on smoke to approve its gate)"),
    )
    width = max(len(command) for command, _what in steps)
    sys.stdout.write(
        f"wrote {target} (project {name}):\n"
        "  build   a job, run at start and again when a file in src/ changes\n"
        "  server  a service that waits for the build, with a health check and restarts\n"
        "  smoke   a test of the server, behind the manual gate go\n"
        "next:\n"
        + "".join(f"  {command:<{width}}  {what}\n" for command, what in steps)
        + "then put your own commands in; every key is in docs/configuration.md\n"
    )
