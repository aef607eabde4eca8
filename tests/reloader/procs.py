"""The config-reloader CLI as an asyncio subprocess, for tests that also run an aiohttp endpoint."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.support.procs import free_port, sample
from tests.support.reloader_proc import reloader_binary, reloader_env


@dataclass
class Running:
    """A config-reloader subprocess; its stdout and stderr go to ``log_path``."""

    proc: asyncio.subprocess.Process
    log_path: Path
    port: int | None

    def lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def alive(self) -> bool:
        return self.proc.returncode is None

    async def get(self, path: str) -> tuple[int, str]:
        assert self.port is not None
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{self.port}{path}") as r:
            return r.status, await r.text()

    async def metric(self, name: str) -> float | None:
        _, text = await self.get("/metrics")
        return sample(text, name)

    async def stop(self, signum: int = signal.SIGTERM, timeout_s: float = 20.0) -> int:
        """Send ``signum`` and return the exit code (a generous timeout: the machine is shared)."""
        if self.proc.returncode is None:
            self.proc.send_signal(signum)
        return await asyncio.wait_for(self.proc.wait(), timeout_s)


Spawn = Callable[..., Awaitable[Running]]


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Spawn]:
    """``await spawn(*args, env=None, listen=True)``: start config-reloader; all are killed at teardown."""
    started: list[Running] = []

    async def start(*args: str, env: Mapping[str, str] | None = None, listen: bool = True) -> Running:
        port = free_port() if listen else None
        argv = [reloader_binary(), *([f"--listen-address=127.0.0.1:{port}"] if listen else []), *args]
        log_path = tmp_path / f"reloader-{len(started)}.log"
        with log_path.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                env=reloader_env(env),
            )
        running = Running(proc=proc, log_path=log_path, port=port)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.proc.returncode is None:
            running.proc.kill()
            await running.proc.wait()


async def wait_serving(running: Running, path: str = "/healthz") -> None:
    """Wait until ``path`` answers 200; fail at once, with the log, if the process exits."""

    async def answers() -> bool:
        if not running.alive():
            pytest.fail(f"config-reloader exited with {running.proc.returncode}: {running.lines()[-20:]}")
        try:
            return (await running.get(path))[0] == 200
        except aiohttp.ClientError:
            return False

    deadline = asyncio.get_running_loop().time() + 30
    while not await answers():
        assert asyncio.get_running_loop().time() < deadline, f"{path} never answered 200"
        await asyncio.sleep(0.05)


__all__ = ["Running", "Spawn", "spawn", "wait_serving"]
