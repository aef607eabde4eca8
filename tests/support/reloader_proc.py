"""The config-reloader CLI as a real subprocess, and Kubernetes-style volumes written like the kubelet.

Used by the end-to-end tests in tests/e2e/test_reloader_*.py. Each reloader serves its own /metrics on
a free loopback port, so a test reads the same metrics that a user's alerts would.
"""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import free_port, http_get, sample, wait_for


def reloader_binary() -> str:
    """The console script installed next to the running interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "config-reloader"
    if beside.exists():
        return str(beside)
    found = shutil.which("config-reloader")
    if found is None:
        pytest.fail("config-reloader is not installed: run `make venv`")
    return found


@dataclass
class Reloader:
    """A running ``config-reloader``: its process, its /metrics URL and its log file."""

    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def metrics_text(self) -> str:
        status, body = http_get(self.url + "/metrics")
        if status != 200:
            raise ValueError(f"GET /metrics: {status}")
        return body.decode()

    def metric(self, name: str, labels: str = "") -> float | None:
        """One sample, e.g. ``metric("reloader_info", 'method="http"')``; None when it is absent."""
        return sample(self.metrics_text(), name, labels)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout_s: float = 10.0) -> int:
        """SIGTERM, then the exit code (killing it, and returning -9, if it does not stop)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def reloader_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's environment without the variables that a template may reference, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("POD_NAME", "STATEFULSET_ORDINAL_NUMBER")}
    env.update(extra or {})
    return env


def start_reloader(
    workdir: Path, *args: str, env: Mapping[str, str] | None = None, wait_ready: bool = True
) -> Reloader:
    """Start ``config-reloader *args`` with ``--listen-address`` on a free port.

    With ``wait_ready``, returns once /readyz answers 200 (first apply and reload done).
    """
    port = free_port()
    log_path = workdir / f"reloader-{port}.log"
    argv = [reloader_binary(), f"--listen-address=127.0.0.1:{port}", *args]
    with log_path.open("wb") as logf:
        proc = subprocess.Popen(
            argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=reloader_env(env)
        )
    reloader = Reloader(proc=proc, url=f"http://127.0.0.1:{port}", log_path=log_path)

    def serving(path: str) -> bool:
        if proc.poll() is not None:
            pytest.fail(f"config-reloader exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        return http_get(reloader.url + path, timeout_s=1.0)[0] == 200

    try:
        wait_for(
            lambda: serving("/healthz"), timeout_s=30.0, what=f"config-reloader /healthz (log: {log_path})"
        )
        if wait_ready:
            wait_for(
                lambda: serving("/readyz"), timeout_s=30.0, what=f"config-reloader /readyz (log: {log_path})"
            )
    except BaseException:
        # The caller never gets this process, so nobody else would stop it.
        reloader.stop(timeout_s=2.0)
        raise
    return reloader


def run_reloader_once(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``config-reloader *args`` to completion (init mode); stdout and stderr captured together."""
    return subprocess.run(
        [reloader_binary(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=reloader_env(env),
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def reloader_factory(tmp_path: Path) -> Iterator[Any]:
    """``start(*args, env=None, wait_ready=True) -> Reloader``; every reloader is stopped at teardown."""
    started: list[Reloader] = []

    def start(*args: str, env: Mapping[str, str] | None = None, wait_ready: bool = True) -> Reloader:
        r = start_reloader(tmp_path, *args, env=env, wait_ready=wait_ready)
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


def gz(text: str) -> bytes:
    return gzip.compress(text.encode(), mtime=0)


def replace_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a sibling temporary name, then rename it over ``path``: readers never see half."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class K8sVolume:
    """A directory laid out like a Secret or ConfigMap volume, and updated the way the kubelet does it.

    ``..<timestamp>/<key>`` holds the data, ``..data`` links to the current timestamped dir, and each
    visible ``<key>`` links to ``..data/<key>``. An update writes a new timestamped dir, swaps ``..data``
    with one rename, and deletes the old dir: the visible names never change, so only a watcher of the
    directory sees it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._generation = 0

    def update(self, files: Mapping[str, bytes]) -> None:
        self._generation += 1
        stamp = time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime()) + f".{self._generation:09d}"
        new_dir = self.root / f"..{stamp}"
        new_dir.mkdir()
        for key, data in files.items():
            (new_dir / key).write_bytes(data)
        data_link = self.root / "..data"
        old_target = os.readlink(data_link) if data_link.is_symlink() else None
        tmp_link = self.root / "..data_tmp"
        tmp_link.symlink_to(new_dir.name)
        os.replace(tmp_link, data_link)
        for key in files:
            visible = self.root / key
            if not visible.is_symlink():
                visible.symlink_to(f"..data/{key}")
        # A key that is gone loses its visible link too, as the kubelet does: no dangling names.
        for visible in self.root.iterdir():
            if visible.is_symlink() and not visible.name.startswith("..") and visible.name not in files:
                visible.unlink()
        if old_target is not None:
            shutil.rmtree(self.root / old_target)
