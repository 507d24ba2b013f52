"""Where devster finds its cgroup v2 hierarchy, and the switch that turns cgroups off."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from devster_tui.executors.base import ProcessSpec
from devster_tui.executors.cgroup import disabled_by_env, engine_owner, own_cgroup
from devster_tui.executors.local import LocalExecutor
from tests.helpers import run

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

DESKTOP = """\
25 1 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw
"""


def test_a_hybrid_host_uses_the_unified_mount() -> None:
    found = own_cgroup(HYBRID, "4:memory:/x\n0::/\n")
    assert found == (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/unified"))


def test_a_systemd_desktop_uses_the_users_delegated_scope() -> None:
    own = "/user.slice/user-1000.slice/user@1000.service/app.slice/term.scope"
    found = own_cgroup(DESKTOP, f"0::{own}\n")
    assert found is not None
    assert found[0] == Path("/sys/fs/cgroup" + own)


def test_a_mount_of_another_part_of_the_tree_or_a_cgroup_outside_the_namespace_is_unusable() -> (
    None
):
    bind = "30 1 0:22 /other /mnt/cg rw - cgroup2 cgroup2 rw\n"
    assert own_cgroup(bind, "0::/mine\n") is None
    assert own_cgroup(DESKTOP, "0::/../sibling\n") is None
    assert own_cgroup(HYBRID.replace("cgroup2 cgroup2", "cgroup cgroup"), "0::/\n") is None
    assert own_cgroup(DESKTOP, "1:name=systemd:/\n") is None  # v1 only


def test_only_devsters_own_subtree_names_are_taken_for_an_engines() -> None:
    assert engine_owner("devster-123-4567-2") == (123, 4567)
    assert engine_owner("devster-123-4567") is None
    assert engine_owner("docker") is None


@pytest.mark.parametrize("value", ["off", "0", "no", "OFF"])
def test_devster_cgroups_off_forces_the_fallback(value: str, tmp_path: Path) -> None:
    assert disabled_by_env({"DEVSTER_CGROUPS": value})
    assert not disabled_by_env({})

    async def go() -> str | None:
        old = os.environ.get("DEVSTER_CGROUPS")
        os.environ["DEVSTER_CGROUPS"] = value
        ex = LocalExecutor(guard=False)
        try:
            spec = ProcessSpec(task="t", argv=["sleep", "30"], env=dict(os.environ), cwd="/")
            proc = await ex.spawn(spec, lambda _s, _d: None, lambda _s: None)
            where = proc.cgroup
            await proc.stop(signal.SIGKILL, 0)
            return where
        finally:
            if old is None:
                os.environ.pop("DEVSTER_CGROUPS", None)
            else:
                os.environ["DEVSTER_CGROUPS"] = old
            await ex.aclose()

    assert run(go()) is None


@pytest.mark.skipif(own_cgroup() is None, reason="no cgroup v2 here")
def test_a_task_is_in_its_cgroup_from_the_start_and_the_cgroup_goes_with_it() -> None:
    async def go() -> tuple[int | None, str | None, list[str], str | None]:
        ex = LocalExecutor(guard=False)
        spec = ProcessSpec(task="web", argv=["sleep", "30"], env=dict(os.environ), cwd="/")
        proc = await ex.spawn(spec, lambda _s, _d: None, lambda _s: None)
        where = proc.cgroup
        members = _procs(where)
        await proc.stop(signal.SIGTERM, 5)
        tree = ex.cgroup_path
        await ex.aclose()
        return proc.pid, where, members, tree

    pid, where, members, tree = run(go())
    if where is None:
        pytest.skip("cgroup v2 is not writable here")
    assert where.endswith("-web")
    # The task alone: the engine went back home right after the spawn.
    assert members == [str(pid)]
    assert not Path(where).exists()
    assert tree is not None and not Path(tree).exists()


def _procs(cgroup: str | None) -> list[str]:
    if cgroup is None:
        return []
    with open(os.path.join(cgroup, "cgroup.procs")) as f:
        return f.read().split()
