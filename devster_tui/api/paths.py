"""Where a project's control socket lives, and the single-instance lock beside it.

Why here and import-light: every CLI client computes the socket path before it talks to an
engine, so this module uses only the standard library.  The socket sits in a per-user
runtime directory (``$XDG_RUNTIME_DIR/devster`` or ``/tmp/devster-UID``), in a 0700
sub-directory named after a hash of the project file's real path: the path stays short
(Unix socket paths are limited to ~107 bytes) and only the owner can enter the directory,
whatever the umask.  The lock is an ``flock`` on a file in the same directory, so the
kernel releases it when an engine dies, even by ``kill -9``; the socket that engine left
behind is then stale and the next engine replaces it.  A ``$XDG_RUNTIME_DIR`` that belongs
to another user is refused (by owner, so also when running as root, whom no permission
stops), rather than filled with directories that user controls.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from devster_tui.errors import DevsterError, ExitCode

SOCKET_NAME = "api.sock"
"""File name of the control socket inside the runtime directory."""
LOCK_NAME = "engine.lock"
"""File name of the lock (holds the engine's pid)."""
INFO_NAME = "engine.json"
"""File name of the engine's description (pid, project, TCP address)."""


class RuntimeDirError(DevsterError):
    """The runtime directory is unsafe (not ours, a symlink, open to others): exit 2."""

    def __init__(self, problem: str) -> None:
        """Describe the problem, naming the path (``/run/user/0 belongs to ...``)."""
        super().__init__(f"unsafe runtime directory: {problem}", ExitCode.CONFIG)


class AlreadyRunning(DevsterError):
    """Another engine holds the project's lock: exit 5."""

    def __init__(self, pid: int | None) -> None:
        """Record the other engine's pid (None when unknown)."""
        super().__init__(
            f"already running (pid {pid if pid is not None else '?'})", ExitCode.ALREADY_RUNNING
        )
        self.pid = pid
        """The running engine's process id, if known."""


def _xdg_runtime_dir() -> Path | None:
    """``$XDG_RUNTIME_DIR`` when it names an existing directory by an absolute path."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg) and os.path.isdir(xdg):
        return Path(xdg)
    return None


def runtime_base() -> Path:
    """The per-user directory holding one sub-directory per project."""
    xdg = _xdg_runtime_dir()
    if xdg is not None:
        return xdg / "devster"
    return Path(os.environ.get("TMPDIR") or "/tmp") / f"devster-{os.getuid()}"


def project_key(config_file: Path) -> str:
    """A short stable name for a project: a hash of its file's real path."""
    real = os.path.realpath(config_file)
    return hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def runtime_dir(config_file: Path) -> Path:
    """The project's runtime directory (not created)."""
    return runtime_base() / project_key(config_file)


def socket_path(config_file: Path) -> Path:
    """The project's control socket path."""
    return runtime_dir(config_file) / SOCKET_NAME


def _private_dir(path: Path) -> None:
    """Create ``path`` as an owner-only directory, or check that an existing one is."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise RuntimeDirError(f"{path} is not a directory")
    if info.st_uid != os.getuid():
        raise RuntimeDirError(f"{path} belongs to another user (uid {info.st_uid})")
    # mkdir's mode is masked by the umask (and an older directory may be wider): fix it.
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)


def ensure_runtime_dir(config_file: Path) -> Path:
    """Create (or check) the project's runtime directory and its parent, both 0700.

    Raises:
        RuntimeDirError: when a directory exists but is not a directory owned by this user,
            or ``$XDG_RUNTIME_DIR`` (where the directories would go) belongs to another user.
    """
    xdg = _xdg_runtime_dir()
    if xdg is not None and (owner := os.stat(xdg).st_uid) != os.getuid():
        raise RuntimeDirError(f"{xdg} (XDG_RUNTIME_DIR) belongs to another user (uid {owner})")
    base = runtime_base()
    _private_dir(base)
    directory = base / project_key(config_file)
    _private_dir(directory)
    return directory


@dataclass(slots=True)
class EngineLock:
    """The single-instance lock of one project, held while an engine runs."""

    directory: Path
    """The runtime directory."""
    fd: int
    """The open, locked lock file."""

    @property
    def socket(self) -> Path:
        """Where this engine's control socket goes."""
        return self.directory / SOCKET_NAME

    def release(self) -> None:
        """Remove the socket and description, and drop the lock (idempotent)."""
        if self.fd < 0:
            return
        for name in (SOCKET_NAME, INFO_NAME):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.directory / name)
        fd, self.fd = self.fd, -1
        os.close(fd)


def read_lock_pid(directory: Path) -> int | None:
    """The pid written in a runtime directory's lock file, if readable."""
    try:
        text = (directory / LOCK_NAME).read_text(encoding="ascii").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def acquire(config_file: Path) -> EngineLock:
    """Take the project's single-instance lock and clear a stale socket.

    Returns:
        The held lock; call :meth:`EngineLock.release` when the engine has stopped.

    Raises:
        AlreadyRunning: when another live engine holds the lock.
        RuntimeDirError: when the runtime directory is unsafe.
    """
    directory = ensure_runtime_dir(config_file)
    path = directory / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise AlreadyRunning(read_lock_pid(directory)) from None
        raise
    os.fchmod(fd, 0o600)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    # Whoever held the lock before is gone: a socket file left behind is stale.
    for name in (SOCKET_NAME, INFO_NAME):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(directory / name)
    return EngineLock(directory, fd)
