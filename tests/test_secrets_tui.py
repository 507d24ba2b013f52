"""The secret prompt: masked input, one answer per secret, Esc cancels (nothing starts)."""

from __future__ import annotations

import asyncio

from textual.widgets import Input

from devster_tui.tui.screens.secret_prompt import SecretPromptApp, ask_secrets

VALUE = "Pr0mpt-S3cret-zz"


def test_prompt_returns_each_answer_and_never_shows_the_typed_text() -> None:
    async def main() -> tuple[dict[str, str] | None, str]:
        app = SecretPromptApp([("db", "Database password"), ("api", "API token")])
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press(*VALUE)
            await pilot.press("enter")
            second = app.query_one("#secret-1", Input)
            assert app.focused is second
            screen = app.export_screenshot()
            await pilot.press(*"tok-2", "enter")
        return app.return_value, screen

    answers, screen = asyncio.run(asyncio.wait_for(main(), 30))
    assert answers == {"db": VALUE, "api": "tok-2"}
    assert "Pr0mpt" not in screen and "S3cret" not in screen
    assert "Database" in screen and "•" in screen, "the question and the masked answer"


def test_enter_on_an_empty_answer_keeps_asking() -> None:
    async def main() -> tuple[bool, dict[str, str] | None]:
        app = SecretPromptApp([("db", "Password")])
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("enter")
            still_open = app.is_running and app.return_value is None
            await pilot.press("x", "enter")
        return still_open, app.return_value

    assert asyncio.run(asyncio.wait_for(main(), 30)) == (True, {"db": "x"})


def test_escape_cancels_the_prompt() -> None:
    async def main() -> dict[str, str] | None:
        app = SecretPromptApp([("db", "Password")])
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("a", "escape")
        return app.return_value

    assert asyncio.run(asyncio.wait_for(main(), 30)) is None


def test_nothing_to_ask_opens_no_screen() -> None:
    assert ask_secrets([]) == {}
