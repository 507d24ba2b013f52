"""Throwaway OpenSSH servers on 127.0.0.1 for the ssh tests (own host keys, config, keys)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
"""The sshd binary."""


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path, kind: str = "ed25519") -> Path:
    """Create a key pair without passphrase at ``path`` (and ``path.pub``)."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True, timeout=30
    )
    return path


@dataclass
class Sshd:
    """One running sshd (``sshd -D -e -f CONFIG``)."""

    directory: Path
    """Where its config, keys and log live."""
    port: int
    """Its port on 127.0.0.1."""
    host_key: Path
    """Its host private key."""
    client_key: Path
    """A client key that it accepts."""
    max_sessions: int = 10
    """Its MaxSessions."""
    proc: subprocess.Popen[bytes] | None = None
    """The listener process."""
    extra: list[str] = field(default_factory=list)
    """Extra config lines."""

    @property
    def known_hosts_line(self) -> str:
        """A known_hosts line for this server."""
        pub = (self.host_key.with_suffix(".pub")).read_text().split()
        return f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n"

    def start(self) -> None:
        """Start (or restart on the same port) and wait until it accepts connections."""
        config = self.directory / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.directory / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.directory / 'authorized_keys'}",
                    "StrictModes no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin yes",
                    "UsePAM no",
                    f"MaxSessions {self.max_sessions}",
                    "MaxStartups 100",
                    "AllowTcpForwarding yes",
                    "LogLevel ERROR",
                    *self.extra,
                ]
            )
            + "\n"
        )
        log = open(self.directory / "sshd.log", "ab")
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.02)
        raise RuntimeError(f"sshd did not start: {(self.directory / 'sshd.log').read_text()}")

    def sshd_processes(self) -> list[int]:
        """The listener and every sshd process below it (not the users' commands)."""
        if self.proc is None:
            return []
        children: dict[int, list[int]] = {}
        names: dict[int, str] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                raw = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            name = raw[raw.find(b"(") + 1 : raw.rfind(b")")].decode(errors="replace")
            ppid = int(raw[raw.rfind(b")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry))
            names[int(entry)] = name
        found: list[int] = []
        todo = [self.proc.pid]
        while todo:
            pid = todo.pop()
            if pid != self.proc.pid and not names.get(pid, "").startswith("sshd"):
                continue
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def kill_all(self) -> None:
        """SIGKILL the listener and its sshd session processes: every link drops at once,
        and the users' commands lose their channel (they are left to clean up)."""
        if self.proc is None:
            return
        for pid in self.sshd_processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)
        self.proc = None


def start_sshd(directory: Path, client_key: Path, *, max_sessions: int = 10) -> Sshd:
    """Start an sshd in ``directory`` that accepts ``client_key`` for any user."""
    directory.mkdir(parents=True, exist_ok=True)
    host_key = keygen(directory / "host_key")
    (directory / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    server = Sshd(directory, free_port(), host_key, client_key, max_sessions=max_sessions)
    server.start()
    return server
