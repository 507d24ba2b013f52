"""Health probes against real sockets, and the monitor's retries/start-period rules."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from devster_tui.config.schema import EnsureStep, HealthCheck
from devster_tui.engine.ensure import EnsureError, run_ensure
from devster_tui.engine.health import HealthMonitor, log_matcher, probe_http, probe_tcp
from devster_tui.engine.interp import InterpolationError, render_template, substitute_ports


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_tcp_probe_fails_on_a_closed_port_and_passes_on_a_listening_one() -> None:
    async def main() -> tuple[bool, bool]:
        port = _free_port()
        closed, _ = await probe_tcp(port, 1.0)
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        open_port = server.sockets[0].getsockname()[1]
        ok, _ = await probe_tcp(f"127.0.0.1:{open_port}", 1.0)
        server.close()
        await server.wait_closed()
        return closed, ok

    closed, ok = asyncio.run(main())
    assert not closed
    assert ok


async def _http_server(status: int) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_http_probe_treats_2xx_3xx_as_healthy_and_5xx_as_unhealthy() -> None:
    async def main() -> list[tuple[bool, str]]:
        out = []
        for status in (200, 302, 503):
            server = await _http_server(status)
            port = server.sockets[0].getsockname()[1]
            out.append(await probe_http(f"http://127.0.0.1:{port}/health", 2.0))
            server.close()
            await server.wait_closed()
        return out

    results = asyncio.run(main())
    assert [ok for ok, _ in results] == [True, True, False]
    assert results[2][1] == "HTTP 503"


def test_http_probe_times_out_on_a_server_that_never_answers() -> None:
    async def main() -> tuple[bool, str]:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        result = await probe_http(f"http://127.0.0.1:{port}/", 0.2)
        server.close()
        return result

    ok, detail = asyncio.run(main())
    assert not ok
    assert "no answer within 0.2s" in detail


def _monitor(**kw: object) -> tuple[HealthMonitor, list[tuple[bool, str, int]]]:
    seen: list[tuple[bool, str, int]] = []

    async def never() -> tuple[bool, str]:
        raise AssertionError("not used")

    check = HealthCheck.model_validate({"tcp": 1, **kw})
    monitor = HealthMonitor(check, never, lambda h, d, f: seen.append((h, d, f)), lambda: 0.0)
    return monitor, seen


def test_monitor_reports_unhealthy_only_after_retries_consecutive_failures() -> None:
    monitor, seen = _monitor(retries=3)
    monitor.observe(True, "ok", 0)
    monitor.observe(False, "x", 1)
    monitor.observe(False, "x", 2)
    assert seen == [(True, "ok", 0)]
    monitor.observe(False, "x", 3)
    assert seen[-1] == (False, "x", 3)
    monitor.observe(False, "x", 4)
    assert len(seen) == 2, "an unchanged verdict must not be reported again"


def test_monitor_ignores_failures_during_start_period() -> None:
    monitor, seen = _monitor(retries=1, start_period="5s")
    monitor.observe(False, "booting", 1.0)
    monitor.observe(False, "booting", 4.9)
    assert seen == []
    monitor.observe(False, "down", 5.0)
    assert seen == [(False, "down", 1)]


def test_monitor_success_resets_the_failure_count() -> None:
    monitor, seen = _monitor(retries=2)
    monitor.observe(False, "x", 1)
    monitor.observe(True, "ok", 2)
    monitor.observe(False, "x", 3)
    assert [h for h, _, _ in seen] == [True]


def test_log_matcher_searches_lines_with_invalid_utf8() -> None:
    matches = log_matcher(r"listening on \d+")
    assert matches(b"\xff\xfe server listening on 8080")
    assert not matches(b"starting")


def test_port_reference_is_replaced_and_unknown_port_is_named() -> None:
    assert substitute_ports("--port=${ports.http}", {"http": 8080}) == "--port=8080"
    try:
        substitute_ports("${ports.grpc}", {"http": 1})
    except InterpolationError as exc:
        assert "grpc" in str(exc)
    else:
        raise AssertionError("unknown port accepted")


def test_template_keeps_dollar_escapes_and_applies_defaults() -> None:
    text = "a=${A} b=${B:-dflt} p=${ports.web} cost=$$5 sh=$(date)"
    out = render_template(text, {"A": "1"}, {"web": 80})
    assert out == "a=1 b=dflt p=80 cost=$5 sh=$(date)"


def test_ensure_creates_directories_and_renders_templates_with_mode(tmp_path: Path) -> None:
    (tmp_path / "conf.tpl").write_text("listen ${ports.http}\nuser ${USER_NAME}\n")
    steps = [
        EnsureStep.model_validate({"mkdir": "data/db"}),
        EnsureStep.model_validate(
            {"template": {"src": "conf.tpl", "dest": "out/app.conf", "mode": "0600"}}
        ),
    ]
    done = run_ensure(steps, tmp_path, {"USER_NAME": "bob"}, {"http": 8080})
    assert done == ["mkdir data/db", "template conf.tpl -> out/app.conf"]
    assert (tmp_path / "data/db").is_dir()
    assert (tmp_path / "out/app.conf").read_text() == "listen 8080\nuser bob\n"
    assert (tmp_path / "out/app.conf").stat().st_mode & 0o777 == 0o600


def test_ensure_template_with_unset_variable_fails_naming_it(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("${NOPE}")
    step = EnsureStep.model_validate({"template": {"src": "t", "dest": "o"}})
    try:
        run_ensure([step], tmp_path, {}, {})
    except EnsureError as exc:
        assert "NOPE" in str(exc)
        assert "ensure[0]" in str(exc)
    else:
        raise AssertionError("unset variable accepted")
    assert not (tmp_path / "o").exists()
