"""Real components for the docker/ssh tests: skip with the reason when one is missing, but
fail under ``CI=true`` (CI must run these tests, not skip them)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

IMAGE = "devster-busybox:test"
"""The local image built FROM scratch by tests/components.sh."""


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"component missing under CI=true: {reason} (run tests/components.sh)")
    pytest.skip(reason)


def require_docker() -> None:
    """A running Docker engine with :data:`IMAGE`, or skip (fail under CI)."""
    if shutil.which("docker") is None:
        _missing("docker CLI not installed")
    try:
        probe = subprocess.run(
            ["docker", "image", "inspect", IMAGE], capture_output=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        _missing("docker does not answer")
        return
    if probe.returncode != 0:
        _missing(f"no Docker engine or no image {IMAGE}: {probe.stderr.decode()[:200]}")


def require_sshd() -> None:
    """OpenSSH server and client binaries, run as root, or skip (fail under CI)."""
    if not (shutil.which("sshd") or os.path.exists("/usr/sbin/sshd")):
        _missing("OpenSSH server (sshd) not installed")
    if shutil.which("ssh-keygen") is None:
        _missing("ssh-keygen not installed")
    if os.geteuid() != 0:
        _missing("the sshd tests run sshd as root")
    os.makedirs("/run/sshd", exist_ok=True)
