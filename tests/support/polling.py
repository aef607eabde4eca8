"""Polling from async tests: wait for a condition without blocking the event loop (which may be
serving a fake API server or an operator in the same process meanwhile)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest


async def eventually(
    predicate: Callable[[], Any],
    what: str = "condition",
    timeout_s: float = 30.0,
    *,
    detail: Callable[[], str] = str,
) -> Any:
    """Poll ``predicate`` until it gives something truthy, and return that.

    After ``timeout_s`` the test fails naming ``what``, the last value, and ``detail()`` (logs, say).
    The machine is shared, so callers keep timeouts generous; nothing here measures time.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last: Any = None
    while loop.time() < deadline:
        last = predicate()
        if last:
            return last
        await asyncio.sleep(0.02)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}; last value: {last!r}\n{detail()}")
