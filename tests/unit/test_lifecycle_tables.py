"""docs/lifecycle.md is the code: every table row is checked against the pure functions.

Each table is read from the page (first matching row wins, ``*`` matches anything,
``a, b`` either value) and compared with the function it documents over the whole input
domain, so a changed rule without a changed table, a table row the code does not follow,
or a combination no row covers, fails here.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator, Sequence

import pytest

from devster_tui.config.schema import RestartPolicy
from devster_tui.engine.policy import (
    PolicyState,
    StopReason,
    after_exit,
    condition_state,
    engine_done,
    exit_success,
    on_dependency_event,
    on_stop_command,
    on_trigger,
    resets_restart_budget,
)
from devster_tui.state.model import ExitInfo, Status, TaskState
from devster_tui.state.selectors import WAIT_CONDITIONS, wait_verdict
from tests.helpers.lifecycle_doc import Row, table


def first_match(rows: Sequence[Row], values: Sequence[str]) -> str | None:
    """The result of the first row whose cells all match ``values``."""
    for inputs, result in rows:
        if all(cell is None or value in cell for cell, value in zip(inputs, values, strict=True)):
            return result
    return None


def check(name: str, domain: Sequence[Sequence[str]], code: Callable[..., str]) -> int:
    """Compare the table with ``code`` over the product of ``domain``; return the count."""
    header, rows = table(name)
    assert len(domain) == len(header) - 1, f"{name}: domain does not fit the header {header}"
    for inputs, _result in rows:
        for cell, values in zip(inputs, domain, strict=True):
            unknown = (cell or set()) - set(values)
            assert not unknown, f"{name}: cell values {unknown} are not in the domain {values}"
    mismatches = []
    count = 0
    for values in itertools.product(*domain):
        count += 1
        documented = first_match(rows, values)
        actual = code(*values)
        if documented != actual:
            mismatches.append(
                f"{dict(zip(header, values, strict=False))}: "
                f"table says {documented}, code does {actual}"
            )
    assert not mismatches, f"{name}: {len(mismatches)} of {count}:\n" + "\n".join(mismatches[:20])
    return count


YES_NO = ("yes", "no")
STATUSES = tuple(s.value for s in Status)
STOPS = ("none", *(s.value for s in StopReason))


def stop_reason(text: str) -> StopReason | None:
    return None if text == "none" else StopReason(text)


def test_success_table() -> None:
    signals = {"none": None, "TERM": 15, "KILL": 9}

    def code(signal: str, exit_code: str, codes: str, stop: str) -> str:
        extra = [130] if codes == "[130]" else []
        ok = exit_success(int(exit_code), signals[signal], extra, stop_reason(stop))
        return "yes" if ok else "no"

    check("success", [tuple(signals), ("0", "1", "130"), ("[]", "[130]"), STOPS], code)


def test_exit_table() -> None:
    def code(stop: str, success: str, policy: str, limit: str, kind: str) -> str:
        spec = RestartPolicy.model_validate(
            {"policy": policy, "max_restarts": 2, "window": "1h", "stable_after": "1h"}
        )
        state = PolicyState(restart_times=(99.0, 99.5) if limit == "reached" else ())
        outcome, _state = after_exit(
            kind=kind,
            spec=spec,
            state=state,
            stop=stop_reason(stop),
            success=success == "yes",
            ran_for=0.5,
            now=100.0,
            rng=random.Random(1),
        )
        return outcome.next.value

    check(
        "exit",
        [
            STOPS,
            YES_NO,
            ("no", "on-failure", "always"),
            ("reached", "not reached"),
            ("job", "service"),
        ],
        code,
    )


def test_auto_restart_off_acts_as_policy_no() -> None:
    spec = RestartPolicy.model_validate({"policy": "always"})
    outcome, _ = after_exit(
        kind="service",
        spec=spec,
        state=PolicyState(),
        stop=None,
        success=False,
        ran_for=1.0,
        now=1.0,
        autorestart=False,
        rng=random.Random(1),
    )
    assert outcome.next.value == "exited"


def test_condition_table() -> None:
    def code(condition: str, kind: str, status: str, ran: str) -> str:
        last = (
            ExitInfo(run=1, code=1, signal=None, success=False, wall=0.0, duration=1.0)
            if ran == "yes"
            else None
        )
        dep = TaskState(name="dep", kind=kind, status=Status(status), last_exit=last)
        return condition_state(dep, condition)[0]

    conditions = ("started", "healthy", "completed", "succeeded")
    check("condition", [conditions, ("job", "service"), STATUSES, YES_NO], code)


def test_dependency_table() -> None:
    def code(event: str, kind: str, newer: str, on_restart: str, on_failure: str, live: str) -> str:
        return on_dependency_event(
            event=event,  # type: ignore[arg-type]
            dependency_kind=kind,
            run=2 if newer == "yes" else 1,
            seen_run=1,
            on_restart=None if on_restart == "unset" else on_restart,  # type: ignore[arg-type]
            on_failure=on_failure,  # type: ignore[arg-type]
            dependent_live=live == "yes",
        )

    rules = ("restart", "stop", "ignore")
    check(
        "dependency",
        [
            ("started", "succeeded", "failed"),
            ("job", "service"),
            YES_NO,
            ("unset", *rules),
            rules,
            YES_NO,
        ],
        code,
    )


def test_trigger_table() -> None:
    def code(
        source: str, status: str, kind: str, live: str, active: str, mode: str, watching: str
    ) -> str:
        return on_trigger(
            source=source,  # type: ignore[arg-type]
            status=Status(status),
            kind=kind,
            live=live == "yes",
            active=active == "yes",
            manual_mode=mode == "manual",
            watching=watching == "on",
        )

    sources = ("files", "interval", "task", "log", "manual", "user")
    check(
        "trigger",
        [sources, STATUSES, ("job", "service"), YES_NO, YES_NO, ("auto", "manual"), ("on", "off")],
        code,
    )


def test_stop_and_budget_tables() -> None:
    check("stop", [YES_NO], lambda active: on_stop_command(active == "yes"))
    check(
        "budget",
        [("start", "restart", "stop", "trigger", "approve")],
        lambda action: "yes" if resets_restart_budget(action) else "no",
    )


def test_lifetime_table() -> None:
    def code(mode: str, active: str, startable: str) -> str:
        done = engine_done(
            mode,  # type: ignore[arg-type]
            any_active=active == "yes",
            can_be_started=startable == "yes",
        )
        return "yes" if done else "no"

    check("lifetime", [("cockpit", "detached", "headless", "exit_when_done"), YES_NO, YES_NO], code)


def test_wait_table() -> None:
    check("wait", [WAIT_CONDITIONS, STATUSES], lambda c, s: wait_verdict(c, Status(s)))


def test_the_checker_catches_a_row_the_code_does_not_follow() -> None:
    """The walk must be able to fail: a table that contradicts the code is reported."""
    rows: list[Row] = [([{"yes"}], "stop"), ([None], "stop")]

    def walk() -> Iterator[str]:
        for (active,) in itertools.product(YES_NO):
            if first_match(rows, (active,)) != on_stop_command(active == "yes"):
                yield active

    assert list(walk()) == ["no"]
    with pytest.raises(AssertionError, match="no table"):
        table("no-such-table")
