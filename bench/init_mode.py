"""Init mode (``--watch-interval=0``): wall time from exec to exit, rendering the 200-job config."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bench.harness import gz, operator_like_config, pod_env, reloader_binary


def measure_init_mode(workdir: Path, runs: int, preexec: Callable[[], None] | None = None) -> list[float]:
    """Seconds per run; one warm-up run first (page cache), not counted. ``preexec`` joins a cgroup."""
    workdir.mkdir(parents=True)
    src = workdir / "prometheus.yaml.gz"
    src.write_bytes(gz(operator_like_config(200, "init")))
    argv = [reloader_binary(), f"--config-file={src}", "--watch-interval=0"]
    env = pod_env()
    times: list[float] = []
    for i in range(runs + 1):
        out = workdir / f"out-{i}.yaml"  # a new output each run, so every run really writes
        started = time.perf_counter()
        done = subprocess.run(
            [*argv, f"--config-envsubst-file={out}"],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=300,
            check=False,
            preexec_fn=preexec if i > 0 else None,
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"init mode exited with {done.returncode}: {done.stderr.decode()[-300:]}")
        if i > 0:
            times.append(elapsed)
    return times
