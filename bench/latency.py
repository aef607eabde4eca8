"""Change-to-reload latency: the time from a finished write of the config to the reload POST."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import reload_endpoint, reloader_process, replace_file


@dataclass(frozen=True)
class LatencyResult:
    """Change-to-reload latencies of one run, in seconds."""

    delay_s: float
    samples_s: list[float]
    extra_reloads: int
    """POSTs beyond one per change: a burst, or a ticker, that reloaded twice."""

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile, so p99 of 100 samples is the 99th smallest."""
        ordered = sorted(self.samples_s)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[min(rank, len(ordered)) - 1]


async def measure_latency(workdir: Path, delay: str, delay_s: float, changes: int) -> LatencyResult:
    """Make ``changes`` one at a time; each waits for the reload of exactly that change before the next.

    Each change writes a numbered first line; the endpoint reads the rendered output when a POST
    arrives, so a late or duplicate reload is counted as extra, never mistaken for the next change's.
    """
    watched, out, staging = workdir / "in", workdir / "out", workdir / "staging"
    for d in (watched, out, staging):
        d.mkdir(parents=True)
    config, rendered = watched / "prometheus.yaml", out / "prometheus.yaml"
    config.write_bytes(b"# change 0\nglobal: {}\n")
    samples: list[float] = []
    extra = 0
    async with reload_endpoint(rendered) as endpoint:
        args = [
            f"--config-file={config}",
            f"--config-envsubst-file={rendered}",
            f"--reload-url={endpoint.url}",
            f"--delay-interval={delay}",
        ]
        async with reloader_process(*args, log_path=workdir / "reloader.log"):
            await endpoint.next_post(timeout_s=30)  # the first apply always reloads
            await asyncio.sleep(0.5)
            endpoint.drain()
            for i in range(1, changes + 1):
                replace_file(config, f"# change {i}\nglobal: {{}}\n".encode(), staging)
                written = time.monotonic()
                while (
                    post := await endpoint.next_post(timeout_s=delay_s + 30)
                ).first_line != f"# change {i}":
                    extra += 1
                samples.append(post.at - written)
                await asyncio.sleep(0.05)  # a duplicate reload of this change would arrive by now
                extra += endpoint.drain()
    return LatencyResult(delay_s=delay_s, samples_s=samples, extra_reloads=extra)
