"""Shared fixtures: the leftover-task check applies to every async test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest


@pytest.fixture(autouse=True)
async def no_pending_tasks() -> AsyncIterator[None]:
    """Fail any async test that leaves an asyncio task behind.

    Autouse fixtures are set up first and torn down last, so other fixtures (aiohttp_server, ...) have
    already closed when this runs.
    """
    yield
    current = asyncio.current_task()
    for _ in range(20):  # give cancelled tasks a few loop turns to finish
        leftover = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        if not leftover:
            return
        await asyncio.sleep(0.01)
    names = ", ".join(sorted(repr(t.get_coro()) for t in leftover))
    for task in leftover:
        task.cancel()
    pytest.fail(f"test left {len(leftover)} asyncio task(s) pending: {names}")


# --- Secrets (issue 12) ---------------------------------------------------------------------------------
# The `secret` fixture registers the secrets a test sets; at the end of the session every log of the run
# is searched for them (tests/support/leaks.py), and a leak fails the run.
pytest_plugins = ["tests.support.leaks"]
