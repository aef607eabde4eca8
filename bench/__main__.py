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

from bench.harness import MiB, reloader_binary
from bench.init_mode import measure_init_mode
from bench.latency import LatencyResult, measure_latency
from bench.memory import measure_memory

RESULTS = Path(__file__).resolve().parent / "results.json"


@dataclass(frozen=True)
class Row:
    """One line of the table: a measured value against its budget (None: reported, not judged)."""

    name: str
    value: float | None
    unit: str
    budget: float | None
    detail: str = ""

    @property
    def verdict(self) -> str:
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
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "config_reloader": version,
    }


def latency_rows(label: str, result: LatencyResult) -> list[Row]:
    delay_ms = result.delay_s * 1000
    detail = f"n={len(result.samples_s)}, extra reloads={result.extra_reloads}"
    return [
        Row(f"latency p50, {label}", result.percentile(50) * 1000, "ms", delay_ms + 30, detail),
        Row(f"latency p99, {label}", result.percentile(99) * 1000, "ms", delay_ms + 100, detail),
    ]


async def run(args: argparse.Namespace, workdir: Path) -> list[Row]:
    rows: list[Row] = []
    if "latency" in args.only:
        rows += await latency_rows_all(args, workdir)
    if "memory" in args.only:
        rows += await memory_rows(args, workdir, (1 * MiB, 64 * MiB))
    if "init" in args.only:
        rows.append(init_row(args, workdir))
    if "operator" in args.only:
        from bench.operator import operator_rows  # the operator extra, only when measured

        rows += [Row(*m) for m in await operator_rows(workdir / "operator")]
    return rows


async def latency_rows_all(args: argparse.Namespace, workdir: Path) -> list[Row]:
    rows: list[Row] = []
    for label, delay, delay_s in (("--delay-interval=0", "0s", 0.0), ("--delay-interval=1s", "1s", 1.0)):
        print(f"bench: latency, {label}, {args.changes} changes ...", file=sys.stderr)
        try:
            result = await measure_latency(workdir / f"latency-{delay}", delay, delay_s, args.changes)
        except (RuntimeError, TimeoutError, OSError) as exc:
            rows.append(Row(f"latency, {label}", None, "ms", delay_s * 1000 + 30, f"error: {exc}"))
            continue
        rows += latency_rows(label, result)
    return rows


async def memory_rows(args: argparse.Namespace, workdir: Path, sizes: tuple[int, ...]) -> list[Row]:
    rows: list[Row] = []
    print(f"bench: memory, idle and applying 1 MiB and 64 MiB configs x{args.repeats} ...", file=sys.stderr)
    try:
        mem = await measure_memory(workdir / "memory", sizes, args.repeats)
        rows.append(Row("RSS idle", mem.idle_rss_bytes / MiB, "MiB", 40))
        for size, budget in zip(sizes, (None, 60.0), strict=True):
            peaks = mem.peak_rss_bytes[size]
            rows.append(
                Row(
                    f"RSS peak, {size // MiB} MiB config",
                    statistics.median(peaks) / MiB,
                    "MiB",
                    budget,
                    f"median of {len(peaks)}, {mem.peak_method}",
                )
            )
    except (RuntimeError, TimeoutError, OSError) as exc:
        rows.append(Row("RSS", None, "MiB", 40, f"error: {exc}"))
    return rows


def init_row(args: argparse.Namespace, workdir: Path) -> Row:
    print(f"bench: init mode, 1 MiB config x{args.init_runs} ...", file=sys.stderr)
    name = "init mode, 1 MiB config"
    try:
        times = measure_init_mode(workdir / "init", args.init_runs)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        return Row(name, None, "ms", 300, f"error: {exc}")
    return Row(name, statistics.median(times) * 1000, "ms", 300, f"median of {len(times)}")


def table(rows: list[Row]) -> str:
    header = ("measurement", "value", "budget", "result", "detail")
    lines = [
        (
            r.name,
            "error" if r.value is None else f"{r.value:.1f} {r.unit}",
            "-" if r.budget is None else f"<= {r.budget:g} {r.unit}",
            r.verdict,
            r.detail,
        )
        for r in rows
    ]
    widths = [max(len(str(cell)) for cell in col) for col in zip(header, *lines, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt.format(*header), rule, *(fmt.format(*line) for line in lines)])


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--changes", type=int, default=100, help="changes per latency run (default 100)")
    parser.add_argument("--repeats", type=int, default=3, help="applies per config size (default 3)")
    parser.add_argument("--init-runs", type=int, default=9, help="init-mode runs (default 9)")
    parser.add_argument(
        "--only",
        type=lambda text: set(text.split(",")),
        default={"latency", "memory", "init", "operator"},
        help="comma-separated subset of latency,memory,init,operator (default: all)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args()

    info = machine()
    with tempfile.TemporaryDirectory(prefix="config-reloader-bench-") as tmp:
        rows = asyncio.run(run(args, Path(tmp)))
    print(
        f"config-reloader bench: {info['cpu_model']}, {info['cores']} cores, Python {info['python']},"
        f" {info['date']}, load {info['load_average_1m']}"
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
