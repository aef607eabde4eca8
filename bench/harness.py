"""What every measurement shares: the reloader subprocess, a timestamping reload endpoint, inputs."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pod_env() -> dict[str, str]:
    """The environment prometheus-operator gives its reloader container: little more than POD_NAME and
    SHARD (not this machine's, which may set SSL_CERT_FILE and the like)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "POD_NAME": "bench-0", "SHARD": "0"}


@contextmanager
def tmpfs_dir() -> Iterator[tuple[Path, str]]:
    """A directory on tmpfs, and how it was had: in a pod the input is a Secret volume and the output
    prometheus-operator's ``config-out`` emptyDir with ``medium: Memory``, both tmpfs. As root a private
    tmpfs is mounted; else /dev/shm; else the ordinary temporary directory (said so in the result)."""
    with tempfile.TemporaryDirectory(prefix="config-reloader-bench-tmpfs-") as tmp:
        path = Path(tmp)
        if os.geteuid() == 0:
            mounted = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=512m,mode=0700", "config-reloader-bench", tmp],
                capture_output=True,
                check=False,
            )
            if mounted.returncode == 0:
                try:
                    yield path, "tmpfs"
                finally:
                    subprocess.run(["umount", "-l", tmp], check=False)
                return
        shm = Path("/dev/shm")
        if shm.is_dir() and os.access(shm, os.W_OK):
            with tempfile.TemporaryDirectory(prefix="config-reloader-bench-", dir=shm) as in_shm:
                yield Path(in_shm), "tmpfs (/dev/shm)"
            return
        yield path, "disk (no tmpfs here)"


def reloader_binary() -> str:
    """$BENCH_RELOADER (``make bench`` sets it to a non-editable install, as in the image), else the
    console script beside the running interpreter (the venv's), else the one on PATH."""
    if chosen := os.environ.get("BENCH_RELOADER"):
        return chosen
    beside = Path(sys.executable).parent / "config-reloader"
    found = str(beside) if beside.exists() else shutil.which("config-reloader")
    if found is None:
        raise SystemExit("bench: config-reloader is not installed; run `make venv` first")
    return found


@dataclass(frozen=True)
class Post:
    """One reload request: when it arrived, and the first line of the rendered output at that moment."""

    at: float
    first_line: str


@dataclass
class ReloadEndpoint:
    """A local ``/-/reload`` that answers 200 and queues a Post for each request."""

    rendered: Path | None
    """The reloader's output file; its first line tells which change a reload is for."""
    port: int = 0
    posts: asyncio.Queue[Post] = field(default_factory=asyncio.Queue)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/-/reload"

    async def next_post(self, timeout_s: float) -> Post:
        async with asyncio.timeout(timeout_s):
            return await self.posts.get()

    def drain(self) -> int:
        """Forget queued POSTs; returns how many there were."""
        dropped = 0
        while not self.posts.empty():
            self.posts.get_nowait()
            dropped += 1
        return dropped


def _first_line(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        with path.open("rb") as f:
            return f.readline().decode(errors="replace").strip()
    except OSError:
        return ""


@asynccontextmanager
async def reload_endpoint(rendered: Path | None = None) -> AsyncIterator[ReloadEndpoint]:
    endpoint = ReloadEndpoint(rendered=rendered)

    async def reload(request: web.Request) -> web.Response:
        arrived = time.monotonic()  # first: this is the end of the latency
        endpoint.posts.put_nowait(Post(arrived, _first_line(endpoint.rendered)))
        await request.read()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/-/reload", reload)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        endpoint.port = int(runner.addresses[0][1])
        yield endpoint
    finally:
        await runner.cleanup()


@asynccontextmanager
async def reloader_process(
    *args: str, log_path: Path, preexec: Callable[[], None] | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run ``config-reloader *args`` for the block; SIGTERM it after, and fail loudly if it had died.

    ``preexec`` runs in the child before exec (joining a cgroup).
    """
    env = pod_env()
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            reloader_binary(),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            preexec_fn=preexec,
        )
    try:
        yield proc
        if proc.returncode is not None:
            raise RuntimeError(f"config-reloader exited early with {proc.returncode}; see {log_path}")
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


def replace_file(path: Path, data: bytes, staging: Path) -> None:
    """Write ``data`` outside the watched dir, then rename it over ``path``: one event, never half a file."""
    tmp = staging / f"{path.name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, path)


def prometheus_like_config(size_bytes: int, marker: str) -> bytes:
    """About ``size_bytes`` of Prometheus-style YAML with ``$(VAR)`` placeholders; ``marker`` makes it unique."""
    head = f"# {marker}\nglobal:\n  external_labels:\n    replica: $(POD_NAME)\nscrape_configs:\n"
    job = (
        "  - job_name: job-{i:08d}\n"
        "    static_configs:\n"
        "      - targets: ['10.0.{a}.{b}:9100']\n"
        "        labels: {{pod: '$(POD_NAME)', shard: '{i}'}}\n"
        "    relabel_configs:\n"
        "      - {{source_labels: [__address__], regex: '(.*):.*', target_label: host, replacement: '$1'}}\n"
    )
    parts = [head]
    size, i = len(head), 0
    while size < size_bytes:
        block = job.format(i=i, a=(i // 256) % 256, b=i % 256)
        parts.append(block)
        size += len(block)
        i += 1
    return "".join(parts).encode()


_OPERATOR_JOB = """- job_name: serviceMonitor/{ns}/{app}/0
  honor_labels: false
  kubernetes_sd_configs:
  - role: endpoints
    namespaces:
      names: [{ns}]
  scrape_interval: 30s
  relabel_configs:
  - source_labels: [job]
    target_label: __tmp_prometheus_job_name
  - action: keep
    source_labels: [__meta_kubernetes_service_label_app, __meta_kubernetes_service_labelpresent_app]
    regex: ({app});true
  - action: keep
    source_labels: [__meta_kubernetes_endpoint_port_name]
    regex: {port}
  - source_labels: [__meta_kubernetes_namespace]
    target_label: namespace
  - source_labels: [__meta_kubernetes_service_name]
    target_label: service
  - target_label: endpoint
    replacement: {port}
  metric_relabel_configs:
  - action: drop
    source_labels: [__name__]
    regex: {drop}
"""


def operator_like_config(jobs: int, marker: str) -> bytes:
    """A config shaped like prometheus-operator's output: ``jobs`` ServiceMonitor jobs with varied names.

    200 jobs are about 160 KiB, 7 KiB gzipped: the config the issue's CPU-per-change budget names.
    """
    head = (
        f"# {marker}\nglobal:\n  scrape_interval: 30s\n  external_labels:\n    prometheus: monitoring/k8s\n"
        "    prometheus_replica: $(POD_NAME)\nscrape_configs:\n"
    )
    parts = [head]
    for i in range(jobs):
        h = hashlib.sha256(f"job-{i}".encode()).hexdigest()
        parts.append(
            _OPERATOR_JOB.format(
                ns=f"team-{h[:6]}", app=f"svc-{h[6:13]}", port=f"http-{h[13:15]}", drop=f"{h[15:21]}_.*"
            )
        )
    return "".join(parts).encode()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)
