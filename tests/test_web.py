"""``devster web``: the cockpit in headless Chromium (DevTools protocol), and the token rules.

The browser test drives Debian's ``chromium`` over the DevTools protocol: it loads the page
textual-serve serves, which starts ``devster attach`` for the connection, and reads the
terminal's text from xterm.js's buffer until the task list shows the project's tasks.
xterm.js draws on a canvas, so the text is read through the ``Terminal`` object: a script
run before the page's own catches it when textual-serve's client stores it as
``this.terminal`` (its only such assignment), and the public buffer API gives the rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devster_tui.api.paths import socket_path
from tests.helpers import devster_cli as _devster
from tests.helpers.components import missing
from tests.test_api_support import runtime_env, write_project

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DEADLINE = 60.0

PROJECT = """
project: webview
tasks:
  alpha-web:
    cmd: [PY, -c, "import time\\nprint('alpha up', flush=True)\\nwhile True: time.sleep(0.5)"]
  beta-worker:
    cmd: [PY, -c, "import time\\nwhile True: time.sleep(0.5)"]
  gamma-build: {cmd: [PY, -c, "print('built')"], kind: job}
"""
TASKS = ("alpha-web", "beta-worker", "gamma-build")

# Runs before the page's scripts: keeps the xterm.js Terminal that textual-serve's client
# assigns to ``this.terminal`` reachable as ``window.__devsterTerminal``.
CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  get() { return undefined; },
  set(value) {
    Object.defineProperty(this, "terminal", {
      value, writable: true, configurable: true, enumerable: true,
    });
    if (value && typeof value.loadAddon === "function" && !window.__devsterTerminal) {
      window.__devsterTerminal = value;
    }
  },
});
"""

SCREEN_TEXT = """
(() => {
  const term = window.__devsterTerminal;
  if (!term) return null;
  const buffer = term.buffer.active;
  const rows = [];
  for (let y = 0; y < buffer.length; y++) {
    const line = buffer.getLine(y);
    rows.push(line ? line.translateToString(true) : "");
  }
  return rows.join("\\n");
})()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _poll(check: object, what: str, limit: float = DEADLINE) -> None:
    assert callable(check)
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.05)  # polling interval of a deadline loop


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A detached engine (``up -d``) on a tiny project, brought down afterwards."""
    tmp = tmp_path_factory.mktemp("web")
    with runtime_env():
        env = dict(os.environ)
        env.pop("DEVSTER_WEB_TOKEN", None)
        file = write_project(tmp, PROJECT)
        started = _devster("up", "-d", cwd=tmp, env=env)
        assert started.returncode == 0, started.stderr
        try:
            yield tmp, env
        finally:
            _devster("down", "--force", cwd=tmp, env=env)
            path = socket_path(file)
            deadline = time.monotonic() + 15
            while path.exists() and time.monotonic() < deadline:
                time.sleep(0.05)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def _web(
    cwd: Path, env: dict[str, str], *args: str
) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """``devster web --port FREE ARGS``, listening; stopped (and its attach children)
    afterwards."""
    port = _free_port()
    errors = cwd / f"web-{port}.err"
    with errors.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devster_tui", "web", "--port", str(port), *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    try:
        _poll(
            lambda: proc.poll() is not None or _listening(port),
            f"devster web listens on {port}",
        )
        assert proc.poll() is None, errors.read_text()
        yield proc, port, errors
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process's group (it leads its own session), then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(10)


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Host": f"127.0.0.1:{port}", **(headers or {})})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


# ---------------------------------------------------------------------- the browser


class DevTools:
    """A minimal DevTools protocol client over one page's websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._next = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command and return its result (events in between are ignored)."""
        self._next += 1
        ident = self._next
        await self._ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        async with asyncio.timeout(30):
            while True:
                message = await self._ws.receive()
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise AssertionError(f"DevTools connection ended: {message!r}")
                reply = json.loads(message.data)
                if reply.get("id") == ident:
                    if "error" in reply:
                        raise AssertionError(f"{method}: {reply['error']}")
                    result: dict[str, Any] = reply.get("result", {})
                    return result

    async def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` in the page."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")


@contextlib.contextmanager
def _chromium(profile: Path) -> Iterator[int]:
    """Headless Chromium with remote debugging on a port it picks; yields the port."""
    if not os.access(CHROMIUM, os.X_OK):
        missing(f"chromium is not installed ({CHROMIUM}); apt-get install -y chromium")
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            # Nothing but loopback resolves: the page's web font link fails at once.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--window-size=1280,800",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    active = profile / "DevToolsActivePort"
    try:
        _poll(
            lambda: proc.poll() is not None or len(_lines(active)) >= 2,
            "chromium writes DevToolsActivePort",
        )
        assert proc.poll() is None, f"chromium exited with {proc.returncode}"
        yield int(_lines(active)[0])
    finally:
        _stop_group(proc)


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except OSError:
        return []


async def _screen_text(debug_port: int, url: str, wanted: tuple[str, ...]) -> str:
    """Load ``url`` in the browser's page and wait until its terminal shows ``wanted``."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{debug_port}/json/list") as answer:
            targets = await answer.json(content_type=None)
        page = next(t for t in targets if t.get("type") == "page")
        async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            tools = DevTools(ws)
            await tools.call("Page.enable")
            await tools.call("Page.addScriptToEvaluateOnNewDocument", source=CATCH_TERMINAL)
            await tools.call("Page.navigate", url=url)
            text: str | None = None
            deadline = time.monotonic() + DEADLINE
            while True:
                text = await tools.evaluate(SCREEN_TEXT)
                if text is not None and all(name in text for name in wanted):
                    return text
                if time.monotonic() > deadline:
                    state = await tools.evaluate("document.body && document.body.className")
                    raise AssertionError(
                        f"the page never showed {wanted} (body class {state!r}); "
                        f"terminal text:\n{text}"
                    )
                await asyncio.sleep(0.1)  # polling interval of a deadline loop


@pytest.mark.slow
def test_page_in_headless_chromium_shows_the_task_list(
    engine: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    cwd, env = engine
    with _chromium(tmp_path / "profile") as debug_port, _web(cwd, env) as (_proc, port, errors):
        page = _get(port, "/")
        assert page.status == 200, errors.read_text()
        url = f"http://127.0.0.1:{port}/"
        text = asyncio.run(asyncio.wait_for(_screen_text(debug_port, url, TASKS), DEADLINE + 30))
        rows = {name: line for line in text.splitlines() for name in TASKS if name in line}
        assert set(rows) == set(TASKS), text
        assert "running" in rows["alpha-web"] and "running" in rows["beta-worker"], text
        assert "succeeded" in rows["gamma-build"], text
        assert "webview" in text, "the title names the project"


# ---------------------------------------------------------------------- the token rules


def _printed_url(errors: Path) -> str:
    found: list[str] = []

    def printed() -> bool:
        match = re.search(r"devster web: open (\S+)", errors.read_text())
        if match:
            found.append(match.group(1))
        return bool(found)

    _poll(printed, "devster web prints its URL")
    return found[0]


def test_off_loopback_without_a_token_one_is_generated_and_required(
    engine: tuple[Path, dict[str, str]],
) -> None:
    cwd, env = engine
    with _web(cwd, env, "--host", "0.0.0.0") as (_proc, port, errors):
        url = _printed_url(errors)
        match = re.fullmatch(rf"http://0\.0\.0\.0:{port}/\?token=([\w-]+)", url)
        assert match, url
        token = match.group(1)
        assert len(token) >= 24
        assert _get(port, "/").status == 401
        assert _get(port, "/?token=wrong").status == 401
        assert _get(port, "/ws").status == 401
        assert _get(port, "/static/js/textual.js").status == 401
        first = _get(port, f"/?token={token}")
        assert first.status == 200
        cookie = first.getheader("Set-Cookie") or ""
        assert f"devster_web={token}" in cookie and "HttpOnly" in cookie, cookie
        with_cookie = {"Cookie": f"devster_web={token}"}
        assert _get(port, "/static/js/textual.js", with_cookie).status == 200
        assert _get(port, "/", {**with_cookie, "Origin": "http://evil.example"}).status == 403


def test_off_loopback_token_comes_from_the_option_or_the_environment(
    engine: tuple[Path, dict[str, str]],
) -> None:
    cwd, env = engine
    with _web(cwd, env, "--host", "0.0.0.0", "--token", "opt-token-123") as (_p, port, errors):
        assert _printed_url(errors).endswith("?token=opt-token-123")
        assert _get(port, "/?token=opt-token-123").status == 200
        assert _get(port, "/").status == 401
    env_token = {**env, "DEVSTER_WEB_TOKEN": "env-token-456"}
    with _web(cwd, env_token, "--host", "0.0.0.0") as (_p, port, errors):
        assert _printed_url(errors).endswith("?token=env-token-456")
        assert _get(port, "/?token=env-token-456").status == 200


def test_loopback_needs_no_token_but_refuses_a_foreign_host(
    engine: tuple[Path, dict[str, str]],
) -> None:
    cwd, env = engine
    with _web(cwd, env) as (_proc, port, errors):
        assert _printed_url(errors) == f"http://127.0.0.1:{port}/"
        assert _get(port, "/").status == 200
        assert _get(port, "/", {"Host": f"rebound.example:{port}"}).status == 403
        assert _get(port, "/", {"Origin": "http://evil.example"}).status == 403
