"""The soak: thousands of random file operations against a running config-reloader.

The config lives in a Kubernetes-style volume (every update is a ``..data`` swap) and the rule files in
a plain watched directory, where files are written in place, replaced by rename, renamed, added and
removed. Bad inputs (corrupt gzip, bytes that are not UTF-8, an empty file) come in between, and the
reload endpoint, a real aiohttp server, fails one request in ten. At the end:

- resident memory stayed flat: within 2 MiB of what it was after the warm-up;
- open file descriptors are what they were at the start;
- the last reload carries the hash of the last input (the reloader's own log line says which, and
  the endpoint saw the last rendering in the output file);
- ``reloader_reloads_total - reloader_reloads_failed_total`` is the endpoint's count of successes.

``make test`` runs a short one (SOAK_OPS, 2,000 by default, well under a minute); ``make soak`` runs
10,000 operations over a few minutes.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from aiohttp import web

from reloader.app import Options, apply_config
from tests.reloader.procs import Running, Spawn, spawn, wait_serving
from tests.support.polling import eventually
from tests.support.reloader_proc import K8sVolume, replace_file

__all__ = ["spawn"]  # the fixture, imported for pytest

OPS = int(os.environ.get("SOAK_OPS", "2000"))
MAX_PAUSE_S = float(os.environ.get("SOAK_MAX_PAUSE_MS", "10")) / 1000
WARM_UP = OPS // 5
POD = "prometheus-soak-0"
RSS_SLACK = 2 * 1024 * 1024
_RELOADED_SHA = re.compile(r"msg=reloaded .*sha256=([0-9a-f]{16})")


@dataclass
class CountingEndpoint:
    """POST /-/reload: fails every tenth request, counts the successes, and hashes the output each time."""

    output: Path
    requests: int = 0
    successes: int = 0
    last_output_sha: str = ""
    shas: list[str] = field(default_factory=list)

    async def handle(self, _: web.Request) -> web.Response:
        self.requests += 1
        if self.requests % 10 == 0:
            return web.Response(status=500, text="boom: injected failure")
        self.successes += 1
        self.last_output_sha = hashlib.sha256(self.output.read_bytes()).hexdigest()
        return web.Response(text="ok")


def config(version: int) -> bytes:
    jobs = "".join(
        f"  - job_name: job-{version}-{i}\n    static_configs: [{{targets: ['h{i}:9100']}}]\n"
        for i in range(30)
    )
    return f"global:\n  external_labels: {{pod: $(POD_NAME), version: '{version}'}}\nscrape_configs:\n{jobs}".encode()


BAD_INPUTS = [
    gzip.compress(b"global: {}\n", mtime=0)[:-6],  # truncated gzip
    b"\x1f\x8b\x08" + b"\0" * 40,  # corrupt gzip
    b"global: \xff\xfe\n",  # not UTF-8
    b"",  # empty
]


class Churn:
    """The random operations; ``last_config`` is the input's last good content."""

    def __init__(self, root: Path, seed: int) -> None:
        self.rng = random.Random(seed)
        self.volume = K8sVolume(root / "config")
        self.rules = root / "rules"
        self.rules.mkdir()
        self.version = 0
        self.last_config = config(0)
        self.volume.update({"prometheus.yaml": self.last_config})
        self.counts: dict[str, int] = {}

    def op(self) -> None:
        kind = self.rng.choices(
            [
                "config",
                "config-gz",
                "bad",
                "rule-write",
                "rule-replace",
                "rule-add",
                "rule-remove",
                "rule-rename",
            ],
            weights=[15, 5, 5, 20, 15, 15, 15, 10],
        )[0]
        self.counts[kind] = self.counts.get(kind, 0) + 1
        rules = sorted(os.listdir(self.rules))
        self.version += 1
        body = f"groups: [{{name: g{self.version}, rules: []}}]\n".encode()
        if kind == "config":
            self.last_config = config(self.version)
            self.volume.update({"prometheus.yaml": self.last_config})
        elif kind == "config-gz":
            self.last_config = config(self.version)
            self.volume.update({"prometheus.yaml": gzip.compress(self.last_config, mtime=0)})
        elif kind == "bad":
            self.volume.update({"prometheus.yaml": self.rng.choice(BAD_INPUTS)})
        elif kind == "rule-write" and rules:
            (self.rules / self.rng.choice(rules)).write_bytes(body)  # in place: a reader may see half
        elif kind == "rule-replace" and rules:
            replace_file(self.rules / self.rng.choice(rules), body)
        elif kind == "rule-remove" and rules:
            (self.rules / self.rng.choice(rules)).unlink()
        elif kind == "rule-rename" and rules:
            os.rename(self.rules / self.rng.choice(rules), self.rules / f"r{self.version}.yaml")
        else:  # rule-add, or nothing to act on yet
            (self.rules / f"r{self.version}.yaml").write_bytes(body)

    def finish(self) -> None:
        """A last good config, so that the final state is one that renders."""
        self.version += 1
        self.last_config = config(self.version)
        self.volume.update({"prometheus.yaml": self.last_config})


def open_fds(pid: int) -> list[str]:
    """What each open descriptor points to (sockets and inotify instances as the kernel names them)."""
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            continue  # closed meanwhile
    return sorted(re.sub(r"\[\d+\]", "[]", target) for target in out)


def last_reloaded_sha(running: Running) -> str | None:
    shas = [m.group(1) for line in running.lines() if (m := _RELOADED_SHA.search(line))]
    return shas[-1] if shas else None


async def metric(running: Running, name: str) -> float:
    return await running.metric(name) or 0.0


@pytest.mark.timeout(max(300, OPS // 10))  # 2,000 ops take about 20 s alone; the machine may be shared
async def test_soak(tmp_path: Path, spawn: Spawn, aiohttp_server: Any) -> None:
    churn = Churn(tmp_path, seed=random.randrange(1 << 30))
    out = tmp_path / "out" / "prometheus.env.yaml"
    out.parent.mkdir()
    endpoint = CountingEndpoint(out)
    app = web.Application()
    app.router.add_post("/-/reload", endpoint.handle)
    server = await aiohttp_server(app)
    running = await spawn(
        f"--config-file={churn.volume.root / 'prometheus.yaml'}",
        f"--config-envsubst-file={out}",
        f"--watched-dir={churn.rules}",
        f"--reload-url={server.make_url('/-/reload')}",
        "--delay-interval=0s",
        "--retry-interval=100ms",
        "--watch-interval=1h",  # events alone must carry every change
        "--log-level=info",
        env={"POD_NAME": POD},
    )
    await wait_serving(running, "/readyz")
    await wait_serving(running, "/healthz")  # the watcher's inotify descriptor exists from here on
    await asyncio.sleep(0.5)
    proc = psutil.Process(running.proc.pid)
    # Measured after warm-up, as RSS is: the first reload goes out without aiohttp, so the reload
    # client's pooled connection only exists once a later reload has been sent.
    fds_at_start: list[str] = []
    rss_after_warm_up = 0
    rss_max = 0
    for i in range(OPS):
        churn.op()
        await asyncio.sleep(churn.rng.uniform(0, MAX_PAUSE_S))
        if i == WARM_UP:
            rss_after_warm_up = proc.memory_info().rss
            fds_at_start = open_fds(proc.pid)
        elif i > WARM_UP and i % 50 == 0:
            rss_max = max(rss_max, proc.memory_info().rss)
        assert running.alive(), running.lines()[-20:]
    churn.finish()

    rendered = churn.last_config.replace(b"$(POD_NAME)", POD.encode())
    scratch = tmp_path / "scratch" / "out.yaml"
    scratch.parent.mkdir()
    expected = apply_config(
        Options(
            config_file=churn.volume.root / "prometheus.yaml",
            output_file=scratch,
            watched_dirs=(churn.rules,),
        ),
        {"POD_NAME": POD},
    )
    assert scratch.read_bytes() == rendered
    await eventually(
        lambda: last_reloaded_sha(running) == expected.sha256[:16],
        "the last reload to carry the last input's hash",
        timeout_s=60,
        detail=lambda: "\n".join(running.lines()[-10:]),
    )
    assert out.read_bytes() == rendered
    assert endpoint.last_output_sha == hashlib.sha256(rendered).hexdigest()
    await asyncio.sleep(1.0)  # nothing is in flight any more: retries are 100 ms apart

    rss_max = max(rss_max, proc.memory_info().rss)
    fds_at_end = open_fds(proc.pid)
    reloads = await metric(running, "reloader_reloads_total")
    failed = await metric(running, "reloader_reloads_failed_total")
    applies_failed = await metric(running, "reloader_config_apply_operations_failed_total")
    stats = (
        f"{OPS} ops {churn.counts}; {endpoint.requests} reload requests, {endpoint.successes} ok; "
        f"{applies_failed:.0f} failed applies; RSS {rss_after_warm_up / 2**20:.1f} -> max {rss_max / 2**20:.1f} MiB; "
        f"fds {len(fds_at_start)} -> {len(fds_at_end)}: {fds_at_start} -> {fds_at_end}"
    )
    print(stats)
    assert reloads - failed == endpoint.successes, stats
    assert failed == endpoint.requests - endpoint.successes, stats
    assert applies_failed > 0, stats  # the bad inputs were seen, so the test exercised them
    assert rss_max - rss_after_warm_up <= RSS_SLACK, stats
    assert len(fds_at_end) <= len(fds_at_start), stats
    assert not [
        line
        for line in running.lines()
        if "Traceback" in line
        or ("level=error" in line and "reload failed" not in line and "apply failed" not in line)
    ]
    assert await running.stop() == 0
