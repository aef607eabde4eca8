"""Resident memory of the reloader: idle, and the peak while it applies a large config."""

from __future__ import annotations

import asyncio
import statistics
import threading
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.harness import (
    free_port,
    gz,
    prometheus_like_config,
    reload_endpoint,
    reloader_process,
    replace_file,
)


@dataclass(frozen=True)
class MemoryResult:
    idle_rss_bytes: int
    peak_rss_bytes: dict[int, list[int]]
    """uncompressed config size -> peak RSS of each apply"""
    peak_method: str


def read_hwm(pid: int) -> int:
    """VmHWM, the kernel's own peak RSS of the process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def reset_hwm(pid: int) -> bool:
    """Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+); False where not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class RssSampler:
    """The fallback when VmHWM cannot be reset: sample RSS every 2 ms in a thread, keep the maximum."""

    def __init__(self, pid: int) -> None:
        self._proc = psutil.Process(pid)
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, int(self._proc.memory_info().rss))
            self._stop.wait(0.002)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def measure_memory(workdir: Path, sizes: tuple[int, ...], repeats: int) -> MemoryResult:
    """Idle RSS after startup, then the peak RSS of ``repeats`` applies of a config of each size."""
    watched, out, staging = workdir / "in", workdir / "out", workdir / "staging"
    for d in (watched, out, staging):
        d.mkdir(parents=True)
    config, rendered = watched / "prometheus.yaml.gz", out / "prometheus.yaml"
    config.write_bytes(gz(prometheus_like_config(4096, "idle")))
    bodies = {size: prometheus_like_config(size, "body") for size in sizes}
    peaks: dict[int, list[int]] = {size: [] for size in sizes}
    method = "VmHWM"
    async with reload_endpoint(rendered) as endpoint:

        async def applied(first_line: str) -> None:
            while (await endpoint.next_post(timeout_s=120)).first_line != first_line:
                pass

        args = [
            f"--config-file={config}",
            f"--config-envsubst-file={rendered}",
            f"--reload-url={endpoint.url}",
            "--delay-interval=0s",
            # As prometheus-operator runs the sidecar: with its /metrics server up.
            f"--listen-address=127.0.0.1:{free_port()}",
        ]
        async with reloader_process(*args, log_path=workdir / "reloader.log") as proc:
            await applied("# idle")
            await asyncio.sleep(2.0)  # let startup garbage settle
            rss = psutil.Process(proc.pid)
            samples = []
            for _ in range(5):
                samples.append(int(rss.memory_info().rss))
                await asyncio.sleep(0.2)
            for size in sizes:
                for rep in range(repeats):
                    # Unique bytes each time, so every write is a real change that must be applied.
                    marker = f"# {size} {rep}"
                    data = gz(f"{marker}\n".encode() + bodies[size])
                    if reset_hwm(proc.pid):
                        replace_file(config, data, staging)
                        await applied(marker)
                        peaks[size].append(read_hwm(proc.pid))
                    else:
                        method = "RSS sampled every 2 ms"
                        with RssSampler(proc.pid) as sampler:
                            replace_file(config, data, staging)
                            await applied(marker)
                        peaks[size].append(sampler.peak)
                    await asyncio.sleep(0.5)
    return MemoryResult(
        idle_rss_bytes=int(statistics.median(samples)), peak_rss_bytes=peaks, peak_method=method
    )
