"""Secrets end to end: a detached engine under umask 000 with three distinctive secret values
(env, file, command) whose tasks print them, read them from env and probe with them; then
every file under the state directory, everything printed, every API answer, every client
command's output and ``/proc/*/cmdline`` of every process during the run hold zero
occurrences of any value, and the state directory is 0700 with every file 0600."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devster_tui.api.client import Address, Client
from devster_tui.api.paths import runtime_dir, socket_path

PY = sys.executable

ENV_VALUE = "envS3cret-7f3a9c1d-XYZ"
FILE_VALUE = "fileS3cret-b2e4d7-QRS"
CMD_VALUE = "cmdS3cret-91ac55-TUV"
VALUES = (ENV_VALUE, FILE_VALUE, CMD_VALUE)
NEEDLES = tuple(v.encode() for v in VALUES)

# The command secret's value never appears in its own argv either: it is assembled at run time.
PROJECT = f"""
project: secrets-e2e
secrets:
  tok: {{env: DEVSTER_T_TOKEN, description: API token}}
  db: {{file: db.pass}}
  key: {{command: [{PY}, -c, "print('cmdS3cret' + '-91ac55-TUV')"]}}
tasks:
  printer:
    kind: job
    env: {{TOK: "${{secret:tok}}", DB: "${{secret:db}}", URL: "postgres://app:${{secret:key}}@db/x"}}
    cmd:
      - {PY}
      - -c
      - |
        import os, sys, time
        tok, db, url = os.environ["TOK"], os.environ["DB"], os.environ["URL"]
        print("token=" + tok, flush=True)
        sys.stdout.write("split=" + db[:7]); sys.stdout.flush(); time.sleep(0.3)
        sys.stdout.write(db[7:] + " end\\n"); sys.stdout.flush()
        sys.stderr.write("url=" + url + "\\n"); sys.stderr.flush()
        print("x" * 5000 + tok + "y" * 5000, flush=True)
        print("done", flush=True)
  svc:
    env: {{TOK: "${{secret:tok}}", KEY: "${{secret:key}}"}}
    cmd:
      - {PY}
      - -c
      - "import os, time\\nprint('up', len(os.environ['KEY']), flush=True)\\nwhile 1: time.sleep(1)"
    health:
      exec:
        - {PY}
        - -c
        - "import os, sys\\nprint(os.environ['TOK'])\\nsys.exit(0 if os.environ['KEY'] else 1)"
      interval: 200ms
"""


def _run(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [PY, "-m", "devster_tui", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=timeout,
        umask=0,
    )


class CmdlineScanner:
    """Reads ``/proc/*/cmdline`` of every process, over and over, until stopped."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.scans = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> CmdlineScanner:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                if any(n in data for n in NEEDLES):
                    self.hits.append(data.replace(b"\0", b" ").decode(errors="replace"))
            self.scans += 1


def _occurrences(data: bytes) -> list[str]:
    return [v for v, n in zip(VALUES, NEEDLES, strict=True) if n in data]


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, dict[str, str]]]:
    runtime = Path(os.environ.get("TMPDIR", "/tmp")) / f"dvs{os.getpid()}{id(tmp_path) % 9999}"
    runtime.mkdir(mode=0o700)
    (tmp_path / "devster.yaml").write_text(PROJECT)
    secret_file = tmp_path / "db.pass"
    secret_file.write_text(FILE_VALUE + "\n")
    secret_file.chmod(0o600)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    env = {**os.environ, "DEVSTER_T_TOKEN": ENV_VALUE}
    try:
        yield tmp_path, env
    finally:
        _run("down", "--force", cwd=tmp_path, env=env)
        subprocess.run(["rm", "-rf", str(runtime)], check=False)


def _wait_for(client: Client, predicate: str, limit: float = 30.0) -> dict[str, str]:
    deadline = time.monotonic() + limit
    statuses: dict[str, str] = {}
    while time.monotonic() < deadline:
        raw = client.json("GET", "/v1/state")
        statuses = {t["name"]: t["status"] for t in raw["state"]["tasks"]}
        if predicate == "ready" and statuses.get("printer") in ("succeeded", "exited"):
            if statuses.get("svc") == "healthy":
                return statuses
        time.sleep(0.05)
    raise AssertionError(f"tasks did not get ready within {limit}s: {statuses}")


def test_no_secret_value_leaks_to_files_output_api_clients_or_command_lines(
    project: tuple[Path, dict[str, str]],
) -> None:
    root, env = project
    printed: list[bytes] = []
    with CmdlineScanner() as scanner:
        started = _run("up", "-d", cwd=root, env=env)
        printed += [started.stdout, started.stderr]
        assert started.returncode == 0, started.stderr.decode()
        client = Client(Address(socket=str(socket_path(root / "devster.yaml"))), timeout=5.0)
        _wait_for(client, "ready")
        runtime = runtime_dir(root / "devster.yaml")
        assert stat.S_IMODE(runtime.stat().st_mode) == 0o700
        modes = {p.name: stat.S_IMODE(p.lstat().st_mode) for p in runtime.iterdir()}
        assert modes and all(m & 0o077 == 0 for m in modes.values()), modes
        answers = [
            client.request("GET", target)[1]
            for target in (
                "/v1/health",
                "/v1/state",
                "/v1/events?since=0",
                "/v1/tasks/printer/output?view=both&start=0&limit=1000",
                "/v1/tasks/printer/output?view=stderr&start=0&limit=1000",
                "/v1/tasks/svc/output?view=both&start=0&limit=1000",
            )
        ]
        clients = [
            _run(*args, cwd=root, env=env)
            for args in (
                ("ps",),
                ("events",),
                ("logs", "printer"),
                ("logs", "svc"),
                ("graph",),
                ("validate",),
            )
        ]
        for done in clients:
            assert done.returncode == 0, (done.args, done.stderr.decode())
            printed += [done.stdout, done.stderr]
        down = _run("down", cwd=root, env=env)
        printed += [down.stdout, down.stderr]
        assert down.returncode == 0, down.stderr.decode()
    assert scanner.scans > 0
    assert scanner.hits == [], "a secret value on a command line"

    both = answers[3]
    assert b"token=[redacted:tok]" in both, "the task printed the token (so the check can fail)"
    assert b"split=[redacted:db] end" in both, "a value split across two reads"
    assert b"x" * 5000 + b"[redacted:tok]" + b"y" * 5000 in both
    assert b"url=postgres://app:[redacted:key]@db/x" in answers[4]
    for answer in answers:
        assert _occurrences(answer) == []
    for data in printed:
        assert _occurrences(data) == []

    state_dir = root / ".devster"
    files = 0
    for path in [state_dir, *state_dir.rglob("*")]:
        info = path.lstat()
        mode = stat.S_IMODE(info.st_mode)
        if path.is_dir():
            assert mode == 0o700, f"{path}: {mode:04o}"
            continue
        files += 1
        assert mode == 0o600, f"{path}: {mode:04o}"
        assert _occurrences(path.read_bytes()) == [], path
    assert files >= 4  # event log, both output logs of two tasks, engine.log, records
    logs = b"".join(p.read_bytes() for p in (state_dir / "logs").glob("printer.*"))
    assert b"split=[redacted:db] end" in logs
