"""``Executor.aclose``: whoever made an executor closes it, once, and nothing else does.

The engine closes what it made (its local executor and the layer router's routes); an
executor handed to it stays open for the one who handed it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from devster_tui.config.loader import load_project
from devster_tui.engine.fanout import LayerRouter
from devster_tui.engine.supervisor import Engine
from devster_tui.executors.base import ProcessSpec
from devster_tui.executors.fake import FakeExecutor, LoopClock, Run, run_virtual
from devster_tui.executors.layered import ResumingExecutor
from devster_tui.state.model import Status


def test_the_router_closes_each_route_once_then_the_shared_pool_never_the_local() -> None:
    local, remote, other = FakeExecutor(), FakeExecutor(), FakeExecutor()
    router = LayerRouter(local)
    router.routes.update({"a": remote, "b": remote, "c": other, "d": local})
    pool_closed: list[str] = []

    async def close_pool() -> None:
        assert remote.closed and other.closed, "the pool closes after the routes"
        pool_closed.append("pool")

    router.closers.append(close_pool)

    async def body() -> None:
        await router.aclose()
        await router.aclose()  # idempotent

    asyncio.run(body())
    assert remote.closed and other.closed
    assert not local.closed, "the local executor belongs to whoever made it"
    assert pool_closed == ["pool"]


def test_a_resuming_wrapper_closes_the_executor_it_wraps() -> None:
    inner = FakeExecutor()
    asyncio.run(ResumingExecutor(inner).aclose())
    assert inner.closed


def test_the_router_still_routes_after_it_was_closed() -> None:
    # A stray spawn after the close must never fall back to running a remote task locally.
    local, remote = FakeExecutor(), FakeExecutor(default=Run(exit_at=0.0))
    router = LayerRouter(local)
    router.routes["api"] = remote

    async def body() -> None:
        await router.aclose()
        spec = ProcessSpec(task="api", argv=["x"], env={}, cwd="/")
        await router.spawn(spec, lambda _s, _c: None, lambda _s: None)

    asyncio.run(body())
    assert [c.task for c in remote.calls_of(kind="spawn")] == ["api"]
    assert local.calls == []


def test_an_engine_leaves_an_executor_handed_to_it_open(tmp_path: Path) -> None:
    (tmp_path / "devster.yaml").write_text(
        "version: 1\nproject: p\ntasks:\n  job: {cmd: 'true', kind: job}\n"
    )
    executor = FakeExecutor(default=Run(exit_at=0.5))
    engine = Engine(
        load_project(tmp_path / "devster.yaml"),
        clock=LoopClock(),
        executor=executor,
        state_dir=tmp_path / "state",
    )

    async def body() -> None:
        await engine.start()
        await asyncio.wait_for(engine.wait_finished(), 10)
        await engine.shutdown()

    run_virtual(body())
    assert engine.store.state.tasks["job"].status is Status.SUCCEEDED
    assert not executor.closed
