"""A large config applied inside a memory limit: does the sidecar survive it, and how much does it use."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.harness import gz, prometheus_like_config, reload_endpoint, reloader_process, replace_file


@dataclass(frozen=True)
class LargeApply:
    applied: bool
    """The reload of the large config arrived and the process was still running after it."""
    vm_hwm_bytes: int
    """The process's own peak RSS (VmHWM)."""
    rss_after_bytes: int


def read_hwm(pid: int) -> int:
    """VmHWM, the kernel's own peak RSS of the process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


async def apply_large(workdir: Path, size_bytes: int, preexec: Callable[[], None] | None) -> LargeApply:
    """Start the sidecar on a small config, then rename a ``size_bytes`` (uncompressed) gz config in."""
    watched, out, staging = workdir / "in", workdir / "out", workdir / "staging"
    for d in (watched, out, staging):
        d.mkdir(parents=True)
    config, rendered = watched / "prometheus.yaml.gz", out / "prometheus.yaml"
    config.write_bytes(gz(prometheus_like_config(4096, "small")))
    large = gz(prometheus_like_config(size_bytes, "large"))
    hwm = rss = 0
    applied = False
    async with reload_endpoint(rendered) as endpoint:
        args = [
            f"--config-file={config}",
            f"--config-envsubst-file={rendered}",
            f"--reload-url={endpoint.url}",
            "--delay-interval=0s",
        ]
        try:
            async with reloader_process(*args, log_path=workdir / "reloader.log", preexec=preexec) as proc:
                while (await endpoint.next_post(timeout_s=300)).first_line != "# small":
                    pass
                replace_file(config, large, staging)
                while (await endpoint.next_post(timeout_s=300)).first_line != "# large":
                    pass
                await asyncio.sleep(0.5)
                if proc.returncode is None:
                    hwm = read_hwm(proc.pid)
                    rss = int(psutil.Process(proc.pid).memory_info().rss)
                    applied = True
        except (RuntimeError, TimeoutError):
            applied = False  # it died (an OOM kill) or never reloaded: the finding itself
    return LargeApply(applied=applied, vm_hwm_bytes=hwm, rss_after_bytes=rss)
