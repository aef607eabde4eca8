"""The operator at scale: 5,000 ServiceMonitors (2 endpoints each) across 100 namespaces.

- cold generation in this process (a fresh JobCache: nothing serialized yet);
- ``config-operator render`` of the same objects from one file, as a process (wall time, peak RSS);
- ``config-operator run`` as a process against the fake API server (tests/fakekube, in this
  process): the first sync, its RSS with the 5,000 monitors in its caches, then one monitor changed
  at a time and the time until the Secret's resourceVersion moves; the final Secret is checked
  against generate() of the objects, so a fast wrong answer cannot pass.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import gzip
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

from bench import operator_fixtures as fx
from bench.harness import MiB
from config_operator.generate import SECRET_KEY, JobCache, compress, generate
from tests.fakekube import FakeKube

MONITORS = 5000
NAMESPACES = 100
SECRET = f"prometheus-{fx.PC_NAME}"
SMS = "servicemonitors.monitoring.coreos.com"
PCS = "prometheusconfigs.reloader.dev"


class Measure(NamedTuple):
    """One table row, in the order of bench.__main__.Row's fields."""

    name: str
    value: float | None
    unit: str
    budget: float | None
    detail: str = ""


def _operator_binary() -> str:
    beside = Path(sys.executable).parent / "config-operator"
    if not beside.exists():
        raise RuntimeError("config-operator is not installed beside this Python; run `make venv`")
    return str(beside)


def cold_generate(runs: int = 3) -> tuple[list[float], list[float], bytes]:
    """Wall and CPU seconds of each generation with a fresh cache, and the config."""
    pc, namespaces = fx.prometheus_config(), fx.namespaces(NAMESPACES)
    monitors = fx.service_monitors(MONITORS, NAMESPACES)
    times, cpu, config = [], [], b""
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        config = generate(pc, monitors, [], namespaces, [], cache=JobCache()).config  # type: ignore[arg-type]
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return times, cpu, config


def render_process(workdir: Path, runs: int = 3) -> tuple[list[float], list[float], int]:
    """Wall and CPU seconds of ``config-operator render`` runs, and their largest peak RSS (bytes)."""
    workdir.mkdir(parents=True, exist_ok=True)
    manifest = workdir / "monitors.yaml"
    manifest.write_text(fx.manifest(MONITORS, NAMESPACES))
    times, cpu, peak = [], [], 0
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.Popen(
            [_operator_binary(), "render", "-f", str(manifest)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        times.append(time.perf_counter() - started)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"render exited {proc.returncode}: {proc.stderr.read().decode()[-500:]}")  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
        peak = max(peak, usage.ru_maxrss * 1024)
        cpu.append(usage.ru_utime + usage.ru_stime)
    return times, cpu, peak


def _rss(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for pid {pid}")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _secret_rv(kube: FakeKube) -> str | None:
    secret = kube.find("secrets", fx.PC_NAMESPACE, SECRET)
    return None if secret is None else str(secret["metadata"]["resourceVersion"])


async def _wait(predicate: Any, timeout_s: float, what: str, step_s: float = 0.001) -> Any:
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                value = predicate()
                if value:
                    return value
                await asyncio.sleep(step_s)
    except TimeoutError:
        raise RuntimeError(f"timed out after {timeout_s} s waiting for {what}") from None


@contextlib.asynccontextmanager
async def _operator(kube: FakeKube, workdir: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    kubeconfig = kube.write_kubeconfig(workdir / "kubeconfig")
    log = (workdir / "operator.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        _operator_binary(),
        "run",
        "--kubeconfig",
        str(kubeconfig),
        "--listen-address",
        "",
        "--resync-interval",
        "0",
        "--log-level",
        "warn",
        stdout=log,
        stderr=log,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


class OperatorRun(NamedTuple):
    first_sync_s: float
    rss_bytes: int
    peak_rss_bytes: int
    latencies_s: list[float]
    cpu_per_change_s: float
    gzipped_bytes: int
    config_bytes: int


async def operator_process(workdir: Path, changes: int) -> OperatorRun:
    async with FakeKube.running(bookmark_interval_s=1.0, history_limit=100_000) as kube:
        for ns in fx.namespaces(NAMESPACES):
            kube.create(ns)
        for monitor in fx.service_monitors(MONITORS, NAMESPACES):
            kube.create(monitor)
        kube.create(fx.prometheus_config())
        async with _operator(kube, workdir) as proc:
            started = time.perf_counter()
            await _wait(lambda: _secret_rv(kube), 300, "the first Secret", step_s=0.01)
            first_sync = time.perf_counter() - started
            await asyncio.sleep(2.0)  # status patch and Events done
            rss = _rss(proc.pid)
            cpu_before = _cpu_s(proc.pid)
            latencies = []
            for i in range(changes):
                index = (i * 997) % MONITORS  # spread over the config
                monitor = copy.deepcopy(fx.service_monitor(index, NAMESPACES, revision=i + 1))
                before = _secret_rv(kube)
                t0 = time.perf_counter()
                current = kube.get(SMS, monitor["metadata"]["namespace"], monitor["metadata"]["name"])
                monitor["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                kube.update(monitor)
                await _wait(lambda before=before: _secret_rv(kube) != before, 60, f"change {i}")  # type: ignore[misc]
                latencies.append(time.perf_counter() - t0)
                await asyncio.sleep(0.3)  # let the status patch and Event go before the next change
            if proc.returncode is not None:
                raise RuntimeError(
                    f"config-operator exited {proc.returncode}; see {workdir / 'operator.log'}"
                )
            peak = _rss(proc.pid, "VmHWM")
            cpu_per_change = (_cpu_s(proc.pid) - cpu_before) / changes
        secret = kube.get("secrets", fx.PC_NAMESPACE, SECRET)
        gzipped = base64.b64decode(secret["data"][SECRET_KEY])
        expected = generate(
            kube.get(PCS, fx.PC_NAMESPACE, fx.PC_NAME),  # type: ignore[arg-type]
            kube.list(SMS),  # type: ignore[arg-type]
            [],
            kube.list("namespaces"),  # type: ignore[arg-type]
            [],
        ).config
        if gzip.decompress(gzipped) != expected:
            raise RuntimeError("the operator's Secret differs from generate() of the final objects")
        return OperatorRun(first_sync, rss, peak, latencies, cpu_per_change, len(gzipped), len(expected))


async def operator_rows(workdir: Path, changes: int = 21) -> list[Measure]:
    rows: list[Measure] = []
    scale = f"{MONITORS} ServiceMonitors x2 endpoints, {NAMESPACES} namespaces"
    print(f"bench: operator, cold generate of {scale} ...", file=sys.stderr)
    times, cpu, config = cold_generate()
    rows.append(
        Measure(
            "operator: generate, cold",
            statistics.median(times) * 1000,
            "ms",
            1000,
            f"median of {len(times)}, CPU {statistics.median(cpu) * 1000:.0f} ms",
        )
    )
    rows.append(
        Measure(
            "operator: config size, gzipped",
            len(compress(config)) / 1024,
            "KiB",
            1024,
            f"{len(config) / MiB:.1f} MiB uncompressed; a Secret holds at most 1 MiB",
        )
    )
    print("bench: operator, config-operator render x3 ...", file=sys.stderr)
    try:
        render_times, render_cpu, render_peak = render_process(workdir)
        rows.append(
            Measure(
                "operator: render",
                statistics.median(render_times) * 1000,
                "ms",
                3000,
                f"median of {len(render_times)}, CPU {statistics.median(render_cpu) * 1000:.0f} ms,"
                f" peak RSS {render_peak / MiB:.0f} MiB",
            )
        )
    except (RuntimeError, OSError) as exc:
        rows.append(Measure("operator: render", None, "ms", 3000, f"error: {exc}"))
    print(f"bench: operator, config-operator run against fakekube, {changes} changes ...", file=sys.stderr)
    try:
        run = await operator_process(workdir, changes)
    except (RuntimeError, TimeoutError, OSError) as exc:
        rows.append(Measure("operator: change -> Secret", None, "ms", 200, f"error: {exc}"))
        return rows
    lat = sorted(run.latencies_s)
    rows += [
        Measure("operator: first sync", run.first_sync_s * 1000, "ms", None, "start to first Secret"),
        Measure(
            "operator: change -> Secret p50",
            statistics.median(lat) * 1000,
            "ms",
            200,
            f"n={len(lat)}, max {lat[-1] * 1000:.0f} ms, operator CPU {run.cpu_per_change_s * 1000:.0f} ms/change",
        ),
        Measure(
            "operator: RSS, monitors cached",
            run.rss_bytes / MiB,
            "MiB",
            200,
            f"peak {run.peak_rss_bytes / MiB:.0f} MiB",
        ),
    ]
    return rows
