"""Real Prometheus and Alertmanager processes from Debian, on loopback and free ports.

Used by every end-to-end test (reloader, relabeling, the operator chain). A missing binary skips the
test with a reason, except under CI=true, where it fails: CI must never pass by skipping.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PROMETHEUS = "prometheus"
ALERTMANAGER = "prometheus-alertmanager"
PROMTOOL = "promtool"


def require_binary(name: str) -> str:
    """Path of a Debian binary, or skip (fail under CI=true) with a printed reason."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} not installed (apt-get install prometheus prometheus-alertmanager; `make test` does it as root)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout_s: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def http_post(url: str, timeout_s: float = 10.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, method="POST", data=b"")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def sample(text: str, name: str, labels: str = "") -> float | None:
    """One sample from a /metrics page, e.g. ``sample(text, "reloader_info", 'method="http"')``.

    ``labels`` is the label set exactly as exposed; None when that series is absent.
    """
    prefix = f"{name}{{{labels}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :].split()[0])
    return None


def wait_for(
    predicate: Any, timeout_s: float = 20.0, interval_s: float = 0.1, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (OSError, ValueError, KeyError) as exc:  # target not up yet
            last = exc
        else:
            if last:
                return last
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}; last value: {last!r}")


@dataclass
class Target:
    """A running Prometheus or Alertmanager: its URL, config path and process."""

    name: str
    url: str
    config_path: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def reload_url(self) -> str:
        return f"{self.url}/-/reload"

    def get_json(self, path: str) -> Any:
        status, body = http_get(self.url + path)
        if status != 200:
            raise ValueError(f"GET {path}: {status} {body[:200]!r}")
        return json.loads(body)

    def metric(self, name: str) -> float | None:
        """A single unlabelled sample from the target's own /metrics."""
        _, body = http_get(self.url + "/metrics")
        return sample(body.decode(), name)

    def config_yaml(self) -> str:
        """The config in force, as Prometheus or Alertmanager reports it."""
        if self.name == "prometheus":
            return str(self.get_json("/api/v1/status/config")["data"]["yaml"])
        return str(self.get_json("/api/v2/status")["config"]["original"])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _start(
    name: str, argv: list[str], url: str, config_path: Path, log_path: Path, ready_path: str
) -> Target:
    logf = log_path.open("wb")
    proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    logf.close()
    target = Target(name=name, url=url, config_path=config_path, proc=proc, log_path=log_path)

    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"{name} exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        return http_get(url + ready_path, timeout_s=1.0)[0] == 200

    wait_for(up, timeout_s=30.0, what=f"{name} to become ready")
    return target


def stop(target: Target) -> None:
    if target.proc.poll() is None:
        target.proc.terminate()
        try:
            target.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            target.proc.kill()
            target.proc.wait()


def start_prometheus(
    workdir: Path, config_path: Path, *extra_args: str, exec_name: str | None = None
) -> Target:
    """Start Prometheus on a free loopback port with the lifecycle API; ``config_path`` must exist.

    ``exec_name`` runs it through a symlink of that name in ``workdir``, so the process's name is unique
    on a machine where other tests run Prometheus too (the signal method finds its target by name).
    """
    binary = require_binary(PROMETHEUS)
    if exec_name is not None:
        link = workdir / exec_name
        link.symlink_to(binary)
        binary = str(link)
    port = free_port()
    storage = workdir / f"prom-data-{port}"
    argv = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={storage}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        *extra_args,
    ]
    return _start(
        "prometheus",
        argv,
        f"http://127.0.0.1:{port}",
        config_path,
        workdir / f"prometheus-{port}.log",
        "/-/ready",
    )


def start_alertmanager(workdir: Path, config_path: Path) -> Target:
    """Start Alertmanager on loopback; clustering off so it never leaves 127.0.0.1."""
    binary = require_binary(ALERTMANAGER)
    port = free_port()
    argv = [
        binary,
        f"--config.file={config_path}",
        f"--storage.path={workdir / f'am-data-{port}'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    return _start(
        "alertmanager",
        argv,
        f"http://127.0.0.1:{port}",
        config_path,
        workdir / f"alertmanager-{port}.log",
        "/-/ready",
    )


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Any]:
    """``start(config_path, *args) -> Target``; every process started is stopped at teardown."""
    started: list[Target] = []

    def start(config_path: Path, *args: str) -> Target:
        t = start_prometheus(tmp_path, config_path, *args)
        started.append(t)
        return t

    yield start
    for t in started:
        stop(t)


@pytest.fixture
def alertmanager_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[Target] = []

    def start(config_path: Path) -> Target:
        t = start_alertmanager(tmp_path, config_path)
        started.append(t)
        return t

    yield start
    for t in started:
        stop(t)
