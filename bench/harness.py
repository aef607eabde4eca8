"""What every measurement shares: the reloader subprocess, a timestamping reload endpoint, inputs."""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reloader_binary() -> str:
    """The console script beside the running interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "config-reloader"
    found = str(beside) if beside.exists() else shutil.which("config-reloader")
    if found is None:
        raise SystemExit("bench: config-reloader is not installed; run `make venv` first")
    return found


@dataclass(frozen=True)
class Post:
    """One reload request: when it arrived, and the first line of the rendered output at that moment."""

    at: float
    first_line: str


@dataclass
class ReloadEndpoint:
    """A local ``/-/reload`` that answers 200 and queues a Post for each request."""

    rendered: Path | None
    """The reloader's output file; its first line tells which change a reload is for."""
    port: int = 0
    posts: asyncio.Queue[Post] = field(default_factory=asyncio.Queue)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/-/reload"

    async def next_post(self, timeout_s: float) -> Post:
        async with asyncio.timeout(timeout_s):
            return await self.posts.get()

    def drain(self) -> int:
        """Forget queued POSTs; returns how many there were."""
        dropped = 0
        while not self.posts.empty():
            self.posts.get_nowait()
            dropped += 1
        return dropped


def _first_line(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        with path.open("rb") as f:
            return f.readline().decode(errors="replace").strip()
    except OSError:
        return ""


@asynccontextmanager
async def reload_endpoint(rendered: Path | None = None) -> AsyncIterator[ReloadEndpoint]:
    endpoint = ReloadEndpoint(rendered=rendered)

    async def reload(request: web.Request) -> web.Response:
        arrived = time.monotonic()  # first: this is the end of the latency
        endpoint.posts.put_nowait(Post(arrived, _first_line(endpoint.rendered)))
        await request.read()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/-/reload", reload)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        endpoint.port = int(runner.addresses[0][1])
        yield endpoint
    finally:
        await runner.cleanup()


@asynccontextmanager
async def reloader_process(*args: str, log_path: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run ``config-reloader *args`` for the block; SIGTERM it after, and fail loudly if it had died."""
    env = {**os.environ, "POD_NAME": "bench-0"}
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            reloader_binary(), *args, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, env=env
        )
    try:
        yield proc
        if proc.returncode is not None:
            raise RuntimeError(f"config-reloader exited early with {proc.returncode}; see {log_path}")
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


def replace_file(path: Path, data: bytes, staging: Path) -> None:
    """Write ``data`` outside the watched dir, then rename it over ``path``: one event, never half a file."""
    tmp = staging / f"{path.name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, path)


def prometheus_like_config(size_bytes: int, marker: str) -> bytes:
    """About ``size_bytes`` of Prometheus-style YAML with ``$(VAR)`` placeholders; ``marker`` makes it unique."""
    head = f"# {marker}\nglobal:\n  external_labels:\n    replica: $(POD_NAME)\nscrape_configs:\n"
    job = (
        "  - job_name: job-{i:08d}\n"
        "    static_configs:\n"
        "      - targets: ['10.0.{a}.{b}:9100']\n"
        "        labels: {{pod: '$(POD_NAME)', shard: '{i}'}}\n"
        "    relabel_configs:\n"
        "      - {{source_labels: [__address__], regex: '(.*):.*', target_label: host, replacement: '$1'}}\n"
    )
    parts = [head]
    size, i = len(head), 0
    while size < size_bytes:
        block = job.format(i=i, a=(i // 256) % 256, b=i % 256)
        parts.append(block)
        size += len(block)
        i += 1
    return "".join(parts).encode()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)
