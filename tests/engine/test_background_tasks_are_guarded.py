"""Every background task of the engine is guarded (engine/background.py): a failure is a
log line (and the caller's event), never lost; a cancelled task leaves nothing behind."""

from __future__ import annotations

import asyncio
import gc
import logging
import warnings

import pytest

from devster_tui.engine.background import spawn_guarded
from tests.helpers import run

LOGGER = "devster_tui.tests.background"


async def _broken() -> None:
    await asyncio.sleep(0)
    raise RuntimeError("restart broke")


def test_a_failing_background_task_is_logged_with_its_name_and_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body() -> object:
        task = spawn_guarded(_broken(), "trigger restart of api", logger=logging.getLogger(LOGGER))
        return await asyncio.wait_for(task, 5)

    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert run(body()) is None  # awaiting the task never raises the failure again
    (record,) = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.ERROR
    assert "trigger restart of api" in record.getMessage()
    assert record.exc_info is not None and "restart broke" in str(record.exc_info[1])


def test_a_failure_the_caller_reports_reaches_it_and_is_logged_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reported: list[str] = []

    async def body() -> None:
        task = spawn_guarded(
            _broken(),
            "observer:src",
            logger=logging.getLogger(LOGGER),
            on_error=lambda exc: reported.append(f"observer src stopped: {exc}"),
        )
        await asyncio.wait_for(task, 5)

    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        run(body())
    assert reported == ["observer src stopped: restart broke"]
    # The event is what the user sees; an ERROR line would print over the cockpit.
    assert [r.levelno for r in caplog.records if r.name == LOGGER] == [logging.DEBUG]


def test_a_reporter_that_fails_is_logged_too(caplog: pytest.LogCaptureFixture) -> None:
    def report(_exc: Exception) -> None:
        raise ValueError("the store is closed")

    async def body() -> None:
        task = spawn_guarded(_broken(), "x", logger=logging.getLogger(LOGGER), on_error=report)
        await asyncio.wait_for(task, 5)

    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        run(body())
    errors = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]
    assert len(errors) == 1 and "the store is closed" in (errors[0].exc_text or "")


def test_a_task_cancelled_before_it_ran_leaves_no_never_awaited_coroutine() -> None:
    ran: list[str] = []

    async def job() -> None:
        ran.append("ran")

    async def body() -> bool:
        task = spawn_guarded(job(), "stop of api")
        task.cancel()  # before its first step, as a stop right after a start does
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled()

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would raise
        assert run(body())
        gc.collect()
    assert ran == []


def test_a_cancellation_reaches_the_job_and_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    async def job() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            seen.append("cancelled")

    async def body() -> None:
        task = spawn_guarded(job(), "health probe of api", logger=logging.getLogger(LOGGER))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)

    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        run(body())
    assert seen == ["cancelled"]
    assert [r for r in caplog.records if r.name == LOGGER] == []
