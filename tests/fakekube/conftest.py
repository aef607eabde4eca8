"""Fixtures for the fake API server's own tests: a running server and a plain HTTP session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.fakekube import FakeKube

# Short, so bookmark tests do not wait long; the semantics do not depend on it.
BOOKMARK_INTERVAL_S = 0.2


@pytest.fixture
async def kube() -> AsyncIterator[FakeKube]:
    """A fake API server on a free port, closed (watches included) after the test."""
    async with FakeKube.running(bookmark_interval_s=BOOKMARK_INTERVAL_S) as server:
        yield server


@pytest.fixture
async def http(kube: FakeKube) -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session with kube.url as its base URL."""
    async with aiohttp.ClientSession(base_url=kube.url) as session:
        yield session
