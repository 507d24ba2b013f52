"""Real components for the docker/ssh tests: skip with the reason when one is missing, but
fail under ``CI=true`` (CI must run these tests, not skip them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from devster_tui.executors.base import Stream

IMAGE = "devster-busybox:test"
"""The local image built FROM scratch by tests/components.sh."""


def missing(reason: str) -> None:
    """Skip with ``reason``, but fail under ``CI=true``: CI must run every component's tests."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"component missing under CI=true: {reason} (run tests/components.sh)")
    pytest.skip(reason)


def require_binary(name: str, *paths: str) -> str:
    """The path of program ``name`` (on PATH or at one of ``paths``), or skip (fail under CI)."""
    found = shutil.which(name) or next((p for p in paths if os.path.exists(p)), None)
    if found is None:
        missing(f"{name} is not installed")
    assert found is not None
    return found


def require_docker() -> None:
    """A running Docker engine with :data:`IMAGE`, or skip (fail under CI)."""
    if shutil.which("docker") is None:
        missing("docker CLI not installed")
    try:
        probe = subprocess.run(
            ["docker", "image", "inspect", IMAGE], capture_output=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        missing("docker does not answer")
        return
    if probe.returncode != 0:
        missing(f"no Docker engine or no image {IMAGE}: {probe.stderr.decode()[:200]}")


def require_sshd() -> None:
    """OpenSSH server and client binaries, run as root, or skip (fail under CI)."""
    if not (shutil.which("sshd") or os.path.exists("/usr/sbin/sshd")):
        missing("OpenSSH server (sshd) not installed")
    if shutil.which("ssh-keygen") is None:
        missing("ssh-keygen not installed")
    if os.geteuid() != 0:
        missing("the sshd tests run sshd as root")
    os.makedirs("/run/sshd", exist_ok=True)


def run_container(name: str, *extra: str) -> None:
    """Start a long-running container of :data:`IMAGE` named ``name``."""
    subprocess.run(
        ["docker", "run", "-d", "--name", name, *extra, IMAGE, "sleep", "100000"],
        check=True,
        capture_output=True,
        timeout=60,
    )


@contextmanager
def scratch_container(prefix: str) -> Iterator[str]:
    """A fresh container (name ``PREFIX-random``), removed afterwards; needs Docker."""
    require_docker()
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    run_container(name)
    try:
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)


class LayerSink:
    """Collects what an executor hands over: output chunks per stream and link notices."""

    def __init__(self) -> None:
        self.data: dict[Stream, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self.notices: list[tuple[str, str, str]] = []

    def out(self, stream: Stream, chunk: bytes) -> None:
        self.data[stream] += chunk

    def eof(self, stream: Stream) -> None:
        pass

    def notice(self, task: str, state: str, detail: str) -> None:
        self.notices.append((task, state, detail))
