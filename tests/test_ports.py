"""Declared ports are checked before start, naming the process that holds a port."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devster_tui.engine.ports import PortOwner, check_ports, describe_conflict

LISTENER = """
import socket, sys, time
family = socket.AF_INET6 if sys.argv[1] == "6" else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.bind(("::1" if sys.argv[1] == "6" else "127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)
time.sleep(1000)
"""


@contextmanager
def listener(family: str = "4") -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A separate process listening on a free port; yields it and the port."""
    proc = subprocess.Popen(
        [sys.executable, "-c", LISTENER, family], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, "the listener died"
        yield proc, int(line)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def test_port_held_by_another_process_names_its_pid_and_command() -> None:
    with listener() as (proc, port):
        assert check_ports({"http": port}) == [
            f"port {port} in use by pid {proc.pid} ({_comm(proc.pid)})"
        ]


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_available(), reason="no IPv6 loopback")
def test_ipv6_listener_is_found_too() -> None:
    with listener("6") as (proc, port):
        assert check_ports({"http": port}) == [
            f"port {port} in use by pid {proc.pid} ({_comm(proc.pid)})"
        ]


def test_free_port_gives_no_message() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert check_ports({"http": port}) == []


def test_only_the_taken_ports_are_reported_in_declaration_order() -> None:
    with listener() as (proc_a, port_a), listener() as (proc_b, port_b):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            free = s.getsockname()[1]
        messages = check_ports({"b": port_b, "free": free, "a": port_a})
        assert [m.split()[1] for m in messages] == [str(port_b), str(port_a)]
        assert f"pid {proc_b.pid}" in messages[0]
        assert f"pid {proc_a.pid}" in messages[1]


def test_port_bound_but_not_listening_is_still_reported_in_use() -> None:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))  # no listen(): invisible as a listener, but taken
        port = s.getsockname()[1]
        assert check_ports({"http": port}) == [f"port {port} in use"]


def test_conflict_message_without_a_visible_owner_says_in_use() -> None:
    assert describe_conflict(8080, None) == "port 8080 in use"
    assert describe_conflict(8080, PortOwner(1234, None)) == "port 8080 in use by pid 1234"
    assert (
        describe_conflict(8080, PortOwner(1234, "python3"))
        == "port 8080 in use by pid 1234 (python3)"
    )
