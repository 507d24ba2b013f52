"""Port conflict checks before a task starts: who, if anyone, already listens on a port.

Why: "address already in use" from a server a minute after start is a poor message; the
supervisor checks a task's declared ports first and names the owner.  The owner is found
the way ``ss -p`` does it: the listening socket's inode in ``/proc/net/tcp{,6}``, then the
process whose ``/proc/PID/fd`` links to ``socket:[INODE]``.  A socket of another user or
another network namespace may have no visible owner; the port is then reported as in use
when binding it fails.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_LISTEN = "0A"
"""TCP state of a listening socket in ``/proc/net/tcp``."""


@dataclass(frozen=True, slots=True)
class PortOwner:
    """A process holding a listening socket."""

    pid: int
    """Process id."""
    name: str | None
    """Its command name (``/proc/PID/comm``), when readable."""


def listening_inodes(ports: Iterable[int]) -> dict[int, set[int]]:
    """Socket inodes of the TCP listeners (IPv4 and IPv6) on each of ``ports``.

    Args:
        ports: Port numbers to look for.

    Returns:
        port -> inodes, only for ports with at least one listener.
    """
    wanted = set(ports)
    found: dict[int, set[int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            try:
                port = int(fields[1].rpartition(":")[2], 16)
                inode = int(fields[9])
            except ValueError:
                continue
            if port in wanted and inode:
                found.setdefault(port, set()).add(inode)
    return found


def socket_owners(inodes: Iterable[int]) -> dict[int, PortOwner]:
    """Find the processes that hold the sockets ``inodes`` (one scan of ``/proc/*/fd``).

    Returns:
        inode -> owner, for the inodes whose owner could be seen.
    """
    targets = {f"socket:[{inode}]": inode for inode in inodes}
    owners: dict[int, PortOwner] = {}
    if not targets:
        return owners
    try:
        pids = sorted(int(name) for name in os.listdir("/proc") if name.isdigit())
    except OSError:
        return owners
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            inode = targets.get(link)
            if inode is not None and inode not in owners:
                owners[inode] = PortOwner(pid=pid, name=_comm(pid))
        if len(owners) == len(targets):
            break
    return owners


def _comm(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip() or None
    except OSError:
        return None


def port_in_use(port: int) -> bool:
    """True when binding ``port`` on all IPv4 addresses fails with "address in use"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def describe_conflict(port: int, owner: PortOwner | None) -> str:
    """The user-facing message for a port that is taken.

    >>> describe_conflict(8080, PortOwner(1234, "python3"))
    'port 8080 in use by pid 1234 (python3)'
    >>> describe_conflict(8080, None)
    'port 8080 in use'
    """
    if owner is None:
        return f"port {port} in use"
    if owner.name is None:
        return f"port {port} in use by pid {owner.pid}"
    return f"port {port} in use by pid {owner.pid} ({owner.name})"


def port_owners(ports: Iterable[int]) -> dict[int, PortOwner | None]:
    """The ports among ``ports`` that are taken, with the owner when it can be seen.

    Returns:
        port -> owner (None when the port is taken but its owner is not visible).
    """
    wanted = sorted(set(ports))
    inodes = listening_inodes(wanted)
    owners = socket_owners(i for found in inodes.values() for i in found)
    result: dict[int, PortOwner | None] = {}
    for port in wanted:
        if port in inodes:
            result[port] = next((owners[i] for i in sorted(inodes[port]) if i in owners), None)
        elif port_in_use(port):
            result[port] = None
    return result


def check_ports(ports: Mapping[str, int]) -> list[str]:
    """Check a task's declared ports before it starts.

    Args:
        ports: Port name -> number, as declared in the task's ``ports``.

    Returns:
        One message per port in use (``port 8080 in use by pid 1234 (python3)``), in the
        order of ``ports``; empty when every port is free.
    """
    taken = port_owners(ports.values())
    return [describe_conflict(port, taken[port]) for port in ports.values() if port in taken]
