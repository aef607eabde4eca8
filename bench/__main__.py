"""``python -m bench``: run every measurement, print one table, write bench/results.json.

Exits 0 when every budget passes, 1 when one fails or a measurement could not run. Run it on an
otherwise idle machine: the figures are wall-clock times and resident memory of real processes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import cgroup
from bench.harness import MiB, reloader_binary, tmpfs_dir
from bench.init_mode import measure_init_mode
from bench.latency import SidecarRun, percentile, proc_cpu_ns, run_sidecar
from bench.memory import apply_large

RESULTS = Path(__file__).resolve().parent / "results.json"


@dataclass(frozen=True)
class Row:
    """One line of the table: a measured value against its budget (None: reported, not judged)."""

    name: str
    value: float | None
    unit: str
    budget: float | None
    detail: str = ""
    skip: str | None = None
    """Why this could not be measured here (no cgroup): SKIP, not FAIL."""

    @property
    def verdict(self) -> str:
        if self.skip is not None:
            return "SKIP"
        if self.value is None:
            return "FAIL"
        if self.budget is None:
            return "-"
        return "PASS" if self.value <= self.budget else "FAIL"


def machine() -> dict[str, object]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    version = subprocess.run(
        [reloader_binary(), "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.strip()
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "config_reloader": version,
        "binary": reloader_binary(),
    }


ENVELOPE = "10m/50Mi cgroup"


async def run(args: argparse.Namespace, workdir: Path) -> list[Row]:
    rows: list[Row] = []
    with tmpfs_dir() as (fast, medium):
        args.medium = medium
        if "sidecar" in args.only:
            rows += await free_rows(args, fast / "free")
        if "envelope" in args.only:
            rows += await envelope_rows(args, fast / "envelope")
    if "large" in args.only:
        # On disk: a tmpfs output would itself be charged to the memory limit (as in a pod), and 64 MiB
        # of it cannot fit in 50 MiB whatever the program does.
        rows.append(await large_row(workdir / "large"))
    if "operator" in args.only:
        from bench.operator import operator_rows  # the operator extra, only when measured

        rows += [Row(*m) for m in await operator_rows(workdir / "operator")]
    return rows


async def free_rows(args: argparse.Namespace, workdir: Path) -> list[Row]:
    """No limits: idle CPU and RSS, latency, reloads per change, CPU per change."""
    print(
        f"bench: sidecar without limits: {args.idle_s:g}s idle, {args.changes} changes ...", file=sys.stderr
    )
    try:
        with cgroup.envelope("account", cpu_millicores=None, memory_bytes=None) as env:
            result = await run_sidecar(
                workdir,
                changes=args.changes,
                idle_s=args.idle_s,
                preexec=env.preexec,
                cpu_ns=lambda _pid: env.cpu_ns(),
            )
            how = "cgroup cpuacct"
    except cgroup.Unavailable:
        result = await run_sidecar(workdir, changes=args.changes, idle_s=args.idle_s, cpu_ns=proc_cpu_ns)
        how = "/proc schedstat of live threads"
    return sidecar_rows(result, f"{how}, files on {args.medium}", args.idle_s)


def sidecar_rows(r: SidecarRun, how: str, idle_s: float) -> list[Row]:
    n = len(r.samples_s)
    per_change = (n + r.extra_reloads) / n if n else None
    detail = f"n={n}, --delay-interval=0, 7 KiB gz / 200 jobs"
    return [
        Row("idle CPU, metrics server on", r.idle_millicores, "m", 0.5, f"over {idle_s:g}s, {how}"),
        Row("idle RSS", None if r.idle_rss_bytes is None else r.idle_rss_bytes / MiB, "MiB", 36, "median"),
        Row("change -> POST p50, no cgroup", percentile(r.samples_s, 50) * 1000, "ms", 5, detail),
        Row("change -> POST p99, no cgroup", percentile(r.samples_s, 99) * 1000, "ms", 20, detail),
        Row("reloads per change", per_change, "", 1.0, f"extra reloads={r.extra_reloads}"),
        Row("CPU per change", r.cpu_per_change_ms, "ms", 2, f"7 KiB gz / 200 jobs, {how}"),
    ]


async def envelope_rows(args: argparse.Namespace, workdir: Path) -> list[Row]:
    """Inside prometheus-operator's envelope: init mode, start to first reload, latency."""
    names = (
        f"init mode, {ENVELOPE}",
        f"start to first reload, {ENVELOPE}",
        f"change -> POST p50, {ENVELOPE}",
    )
    try:
        probe = cgroup.Envelope.create("probe", cpu_millicores=10, memory_bytes=50 * MiB)
        probe.remove()
    except cgroup.Unavailable as exc:
        return [Row(n, None, "s", None, skip=str(exc)) for n in names]
    rows: list[Row] = []
    print(f"bench: init mode in the {ENVELOPE} x{args.init_runs} ...", file=sys.stderr)
    with cgroup.envelope("init", cpu_millicores=10, memory_bytes=50 * MiB) as env:
        times = await asyncio.to_thread(measure_init_mode, workdir / "init", args.init_runs, env.preexec)
    rows.append(
        Row(names[0], statistics.median(times), "s", 5, f"median of {len(times)}, 7 KiB gz / 200 jobs")
    )
    starts: list[float] = []
    last: SidecarRun | None = None
    for i in range(args.start_runs):
        changes = args.envelope_changes if i == args.start_runs - 1 else 0
        print(f"bench: sidecar in the {ENVELOPE}, run {i + 1}/{args.start_runs} ...", file=sys.stderr)
        with cgroup.envelope(f"sidecar-{i}", cpu_millicores=10, memory_bytes=50 * MiB) as env:
            last = await run_sidecar(
                workdir / f"sidecar-{i}", changes=changes, idle_s=0, preexec=env.preexec, settle_s=5.0
            )
        starts.append(last.start_to_first_reload_s)
    rows.append(Row(names[1], statistics.median(starts), "s", 15, f"median of {len(starts)}"))
    assert last is not None
    n = len(last.samples_s)
    rows.append(
        Row(
            names[2],
            percentile(last.samples_s, 50) * 1000,
            "ms",
            150,
            f"n={n}, max {max(last.samples_s) * 1000:.0f} ms, --delay-interval=0",
        )
    )
    return rows


async def large_row(workdir: Path) -> Row:
    name = "64 MiB config applied in a 50Mi cgroup"
    print("bench: a 64 MiB config in a 50 MiB memory cgroup ...", file=sys.stderr)
    try:
        with cgroup.envelope("large", cpu_millicores=None, memory_bytes=50 * MiB) as env:
            result = await apply_large(workdir, 64 * MiB, env.preexec)
            kills, peak = env.oom_kills(), env.peak_memory_bytes()
    except cgroup.Unavailable as exc:
        return Row(name, None, "OOM kills", None, skip=str(exc))
    detail = (
        f"applied={result.applied}, VmHWM {result.vm_hwm_bytes / MiB:.1f} MiB, cgroup peak (RSS + page cache) "
        f"{peak / MiB:.1f} MiB"
    )
    return Row(name, float(kills) if result.applied else None, "OOM kills", 0, detail)


def table(rows: list[Row]) -> str:
    header = ("measurement", "value", "budget", "result", "detail")
    lines = [
        (
            r.name,
            "-" if r.skip else "error" if r.value is None else f"{r.value:.2f} {r.unit}".strip(),
            "-" if r.budget is None else f"<= {r.budget:g} {r.unit}",
            r.verdict,
            r.skip or r.detail,
        )
        for r in rows
    ]
    widths = [max(len(str(cell)) for cell in col) for col in zip(header, *lines, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt.format(*header), rule, *(fmt.format(*line) for line in lines)])


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--changes", type=int, default=100, help="changes without limits (default 100)")
    parser.add_argument("--idle-s", type=float, default=30.0, help="idle CPU measurement window (default 30)")
    parser.add_argument("--init-runs", type=int, default=3, help="init-mode runs in the cgroup (default 3)")
    parser.add_argument("--start-runs", type=int, default=3, help="sidecar starts in the cgroup (default 3)")
    parser.add_argument("--envelope-changes", type=int, default=50, help="changes in the cgroup (default 50)")
    parser.add_argument(
        "--only",
        type=lambda text: set(text.split(",")),
        default={"sidecar", "envelope", "large", "operator"},
        help="comma-separated subset of sidecar,envelope,large,operator (default: all)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args()

    info = machine()
    with tempfile.TemporaryDirectory(prefix="config-reloader-bench-") as tmp:
        rows = asyncio.run(run(args, Path(tmp)))
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(
        f"config-reloader bench: {info['cpu_model']}, {info['cores']} cores, Python {info['python']},"
        f" {info['date']}, {info['config_reloader']} ({info['binary']}),"
        f" load {info['load_average']} at start, {info['load_average_end']} at end"
    )
    print(table(rows))
    args.out.write_text(
        json.dumps({"machine": info, "results": [{**asdict(r), "result": r.verdict} for r in rows]}, indent=2)
        + "\n"
    )
    print(f"wrote {args.out}")
    return 0 if all(r.verdict != "FAIL" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
