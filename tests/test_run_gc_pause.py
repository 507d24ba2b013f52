"""`devster run` pauses the cyclic GC only for its start-up: it is back on once tasks run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import gc, json, sys
from devster_tui.engine import runner
seen = []
original = runner.TaskRunner.start
def start(self, *args, **kwargs):
    seen.append(gc.isenabled())
    return original(self, *args, **kwargs)
runner.TaskRunner.start = start
from devster_tui.cli import main
code = main(["run", "-f", sys.argv[1], "nop"])
sys.stderr.write(json.dumps({"code": code, "at_start": seen, "after": gc.isenabled()}) + "\\n")
"""


def test_gc_left_disabled_after_run_startup_would_let_cycles_pile_up(tmp_path: Path) -> None:
    project = tmp_path / "devster.yaml"
    project.write_text(
        "version: 1\nproject: p\ntasks:\n  nop:\n    cmd: [/bin/true]\n    kind: job\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(project)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "at_start": [True], "after": True}
