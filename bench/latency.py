"""Change-to-reload latency, idle CPU and CPU per change of one running sidecar.

Latency is the time from a finished write of the config (a rename into the watched directory, as the
kubelet does it) to the reload POST arriving at the endpoint.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.harness import free_port, gz, operator_like_config, reload_endpoint, reloader_process, replace_file

CpuNs = Callable[[int], int]
"""pid -> CPU nanoseconds the process (or its cgroup) has used so far."""


def proc_cpu_ns(pid: int) -> int:
    """The process's live threads' CPU time (/proc/PID/task/*/schedstat); where no cgroup can count it."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile, so p99 of 100 samples is the 99th smallest."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class SidecarRun:
    """What one sidecar run measured."""

    start_to_first_reload_s: float = 0.0
    idle_millicores: float | None = None
    idle_rss_bytes: int | None = None
    samples_s: list[float] = field(default_factory=list)
    extra_reloads: int = 0
    """POSTs beyond one per change: a duplicate reload of the same change."""
    cpu_per_change_ms: float | None = None


def config_for(marker: str, body: bytes) -> bytes:
    """The 200-job config, gzipped, with ``marker`` as its first line (the endpoint reads it back)."""
    return gz(f"# {marker}\n".encode() + body.split(b"\n", 1)[1])


async def run_sidecar(
    workdir: Path,
    *,
    changes: int,
    idle_s: float,
    preexec: Callable[[], None] | None = None,
    cpu_ns: CpuNs = proc_cpu_ns,
    settle_s: float = 3.0,
) -> SidecarRun:
    """Start a sidecar as prometheus-operator runs it (metrics server on, ``--delay-interval=0``), then:
    time to its first reload; idle CPU and RSS over ``idle_s``; ``changes`` changes one at a time, each
    waiting for the reload of exactly that change, with the CPU they cost."""
    watched, out, staging = workdir / "in", workdir / "out", workdir / "staging"
    for d in (watched, out, staging):
        d.mkdir(parents=True)
    config, rendered = watched / "prometheus.yaml.gz", out / "prometheus.yaml"
    body = operator_like_config(200, "base")
    config.write_bytes(config_for("change 0", body))
    result = SidecarRun()
    async with reload_endpoint(rendered) as endpoint:
        port = free_port()
        args = [
            f"--config-file={config}",
            f"--config-envsubst-file={rendered}",
            f"--reload-url={endpoint.url}",
            "--delay-interval=0s",
            f"--listen-address=127.0.0.1:{port}",
        ]
        started = time.monotonic()
        async with reloader_process(*args, log_path=workdir / "reloader.log", preexec=preexec) as proc:
            first = await endpoint.next_post(timeout_s=300)  # the first apply always reloads
            result.start_to_first_reload_s = first.at - started
            await wait_ready(port, timeout_s=300)
            await asyncio.sleep(settle_s)
            endpoint.drain()
            if idle_s > 0:
                before = cpu_ns(proc.pid)
                t0 = time.monotonic()
                rss = []
                while time.monotonic() - t0 < idle_s:
                    rss.append(int(psutil.Process(proc.pid).memory_info().rss))
                    await asyncio.sleep(min(1.0, idle_s / 5))
                used_ns = cpu_ns(proc.pid) - before
                result.idle_millicores = used_ns / 1e6 / (time.monotonic() - t0)
                result.idle_rss_bytes = sorted(rss)[len(rss) // 2]
            payloads = [config_for(f"change {i}", body) for i in range(1, changes + 1)]
            before = cpu_ns(proc.pid)
            for i, data in enumerate(payloads, start=1):
                replace_file(config, data, staging)
                written = time.monotonic()
                while (post := await endpoint.next_post(timeout_s=120)).first_line != f"# change {i}":
                    result.extra_reloads += 1
                result.samples_s.append(post.at - written)
                await asyncio.sleep(0.05)  # a duplicate reload of this change would arrive by now
                result.extra_reloads += endpoint.drain()
            if changes:
                result.cpu_per_change_ms = (cpu_ns(proc.pid) - before) / 1e6 / changes
    return result


async def wait_ready(port: int, timeout_s: float) -> None:
    """Until /readyz answers 200: the sidecar has started everything, its server included."""
    import aiohttp

    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"/readyz not 200 within {timeout_s}s")
            await asyncio.sleep(0.2)
