"""Fixtures for the reloader's in-process tests: a running Reloader and a recording reload endpoint."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from reloader.app import Reloader


def sample(reloader: Reloader, name: str, labels: dict[str, str] | None = None) -> float:
    """One metric value from the reloader's own registry (0 when absent)."""
    value = reloader.metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


@contextlib.asynccontextmanager
async def running(reloader: Reloader) -> AsyncIterator[Reloader]:
    """Run the reloader for the block; stop it and wait for it on the way out."""
    stop = asyncio.Event()
    task = asyncio.create_task(reloader.run(stop))
    try:
        yield reloader
    finally:
        stop.set()
        await task


@dataclass
class Endpoint:
    """A real reload endpoint on aiohttp that records what the output held at each request."""

    output: Path
    answer: Callable[[int], int] = lambda _n: 200
    """request number (1-based) -> HTTP status."""
    seen: list[str] = field(default_factory=list)
    """The output file's text at each request."""
    extra: Callable[[], Any] | None = None
    """Called at each request; its result is appended to ``observed``."""
    observed: list[Any] = field(default_factory=list)
    hang: asyncio.Event | None = None
    """When set to an unset event, requests wait for it (a hanging target)."""
    url: str = ""

    async def handle(self, _: web.Request) -> web.Response:
        self.seen.append(self.output.read_text() if self.output.exists() else "")
        if self.extra is not None:
            self.observed.append(self.extra())
        if self.hang is not None:
            await self.hang.wait()
        status = self.answer(len(self.seen))
        return web.Response(status=status, text="ok" if status < 300 else "boom: bad config")


async def start_endpoint(aiohttp_server: Any, endpoint: Endpoint) -> Endpoint:
    app = web.Application()
    app.router.add_post("/-/reload", endpoint.handle)
    server = await aiohttp_server(app)
    endpoint.url = str(server.make_url("/-/reload"))
    return endpoint
