"""The stall watchdog: a shutdown whose event loop is wedged still ends the process."""

from __future__ import annotations

import asyncio
import threading

from devster_tui.tui.watchdog import StallWatchdog


def test_a_wedged_loop_after_a_stop_request_exits_with_the_signals_code() -> None:
    """Pins: devster hung forever (tasks alive, signals ignored) when its loop deadlocked
    during the cockpit's shutdown after the terminal went away."""
    exited: list[int] = []
    done = threading.Event()

    def record(code: int) -> None:
        exited.append(code)
        done.set()

    async def main() -> None:
        watchdog = StallWatchdog(asyncio.get_running_loop(), stall=0.3, beat=0.05, exit_fn=record)
        watchdog.arm(128 + 1)
        # A wedge: the loop thread blocks without returning to the loop (what the deadlocked
        # writer thread did).  The watchdog thread must notice it on its own.
        assert done.wait(10.0), "the watchdog did not fire"
        watchdog.disarm()

    asyncio.run(main())
    assert exited == [129]


def test_a_turning_loop_is_never_killed_however_long_the_stop_takes() -> None:
    exited: list[int] = []

    async def main() -> None:
        watchdog = StallWatchdog(
            asyncio.get_running_loop(), stall=0.3, beat=0.05, exit_fn=exited.append
        )
        watchdog.arm(143)
        await asyncio.sleep(1.0)  # a healthy stop that takes three stall periods
        watchdog.disarm()
        assert not watchdog.fired

    asyncio.run(main())
    assert exited == []


def test_a_disarmed_watchdog_does_nothing_when_the_loop_later_blocks() -> None:
    exited: list[int] = []

    async def main() -> None:
        watchdog = StallWatchdog(
            asyncio.get_running_loop(), stall=0.2, beat=0.05, exit_fn=exited.append
        )
        watchdog.arm(1)
        await asyncio.sleep(0.1)
        watchdog.disarm()
        threading.Event().wait(0.5)  # the loop is wedged on purpose, after the stop completed

    asyncio.run(main())
    assert exited == []
