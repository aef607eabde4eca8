"""`make demo`: config-reloader in front of a real, local Prometheus, with one live change.

What it does, in the order a Kubernetes pod would:
1. writes prometheus.yaml.tmpl, gzipped, where a mounted Secret would be;
2. runs config-reloader once with --watch-interval=0 (the init container) to render it;
3. starts Prometheus on the rendered file, on a free loopback port;
4. runs config-reloader as the sidecar, which watches the gz file and POSTs /-/reload;
5. replaces the gz file with prometheus-changed.yaml.tmpl, and shows that Prometheus applied it,
   from Prometheus's /api/v1/status/config and from the reloader's own /metrics;
6. stops both, and exits 0; anything that goes wrong exits 1 with one line saying what.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml

HERE = Path(__file__).resolve().parent
T = TypeVar("T")


class DemoError(Exception):
    """Something the demo needs did not happen; the message says what."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def wait_for(what: str, check: Callable[[], T | None], timeout_s: float = 30.0) -> T:
    """Poll ``check`` until it returns something truthy; DemoError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            result = check()
        except OSError:  # not listening yet
            result = None
        if result:
            return result
        time.sleep(0.1)
    raise DemoError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def find_reloader() -> str:
    beside = Path(sys.executable).parent / "config-reloader"
    found = str(beside) if beside.exists() else shutil.which("config-reloader")
    if found is None:
        raise DemoError("config-reloader is not installed; run `make demo`, which installs it")
    return found


def find_prometheus() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise DemoError("prometheus is not installed; `make demo` installs Debian's package when run as root")
    return found


def write_gz_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one rename, as the kubelet does, so the reloader never reads half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(gzip.compress(text.encode(), mtime=0))
    os.replace(tmp, path)


@contextmanager
def running(
    name: str, argv: list[str], log_path: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a process for the duration of the block; SIGTERM it on the way out, and check it stopped."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                print(f"  ! {name} did not stop on SIGTERM and was killed")


def ready(url: str, proc: subprocess.Popen[bytes], name: str, log_path: Path) -> Callable[[], bool]:
    def check() -> bool:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise DemoError(f"{name} exited with {proc.returncode}: " + " | ".join(tail))
        return http_get(url)[0] == 200

    return check


def running_config(prom_url: str) -> dict[str, Any]:
    status, body = http_get(prom_url + "/api/v1/status/config")
    if status != 200:
        raise DemoError(f"Prometheus /api/v1/status/config answered {status}")
    doc: dict[str, Any] = yaml.safe_load(json.loads(body)["data"]["yaml"])
    return doc


def show_config(prom_url: str) -> dict[str, Any]:
    doc = running_config(prom_url)
    labels = doc.get("global", {}).get("external_labels", {})
    jobs = [job["job_name"] for job in doc.get("scrape_configs", [])]
    print(f"   external_labels: {json.dumps(labels, sort_keys=True)}")
    print(f"   scrape jobs:     {', '.join(jobs)}")
    return doc


def metric_values(url: str, names: tuple[str, ...]) -> dict[str, str]:
    _, body = http_get(url + "/metrics")
    found: dict[str, str] = {}
    for line in body.decode().splitlines():
        name, _, value = line.partition(" ")
        if name in names:
            found[name] = value
    return found


def demo(workdir: Path) -> None:
    reloader_bin, prometheus_bin = find_reloader(), find_prometheus()
    prom_port, reloader_port = free_port(), free_port()
    prom_url, reloader_url = f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{reloader_port}"
    env = {
        **os.environ,
        "DEMO_REPLICA": "demo-0",
        "PROMETHEUS_PORT": str(prom_port),
        "RELOADER_PORT": str(reloader_port),
    }
    config_dir, out_dir = workdir / "config", workdir / "config_out"
    config_dir.mkdir()
    out_dir.mkdir()
    config_gz, rendered = config_dir / "prometheus.yaml.gz", out_dir / "prometheus.env.yaml"
    common = [f"--config-file={config_gz}", f"--config-envsubst-file={rendered}"]

    print(f"1. Writing examples/{HERE.name}/prometheus.yaml.tmpl, gzipped, to {config_gz}")
    write_gz_atomically(config_gz, (HERE / "prometheus.yaml.tmpl").read_text())

    print("2. config-reloader --watch-interval=0 (init mode) renders it once")
    init = subprocess.run(
        [reloader_bin, *common, "--watch-interval=0"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if init.returncode != 0:
        raise DemoError(f"init mode exited with {init.returncode}: {init.stderr.strip()[-300:]}")
    print(f"   -> {rendered} ({rendered.stat().st_size} bytes), exit 0")

    print(f"3. Starting Prometheus on {prom_url}")
    prom_argv = [
        prometheus_bin,
        f"--config.file={rendered}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
        "--web.enable-lifecycle",
    ]
    prom_log = workdir / "prometheus.log"
    with running("Prometheus", prom_argv, prom_log, env) as prom:
        wait_for("Prometheus to be ready", ready(prom_url + "/-/ready", prom, "Prometheus", prom_log))
        show_config(prom_url)

        print(f"4. Starting the config-reloader sidecar, metrics on {reloader_url}/metrics")
        sidecar_argv = [
            reloader_bin,
            *common,
            f"--reload-url={prom_url}/-/reload",
            f"--listen-address=127.0.0.1:{reloader_port}",
            "--delay-interval=200ms",
        ]
        sidecar_log = workdir / "config-reloader.log"
        with running("config-reloader", sidecar_argv, sidecar_log, env) as sidecar:
            check = ready(reloader_url + "/readyz", sidecar, "config-reloader", sidecar_log)
            wait_for("config-reloader to be ready (first apply and reload)", check)

            print("5. Replacing the gz file with prometheus-changed.yaml.tmpl (new label, new job)")
            changed_at = time.monotonic()
            write_gz_atomically(config_gz, (HERE / "prometheus-changed.yaml.tmpl").read_text())

            def applied() -> bool:
                jobs = [j["job_name"] for j in running_config(prom_url).get("scrape_configs", [])]
                return "config-reloader" in jobs

            wait_for("Prometheus to run the changed config", applied)
            print(f"   Prometheus applied it {time.monotonic() - changed_at:.2f}s after the write:")
            doc = show_config(prom_url)
            if doc["global"]["external_labels"] != {"replica": "demo-0", "env": "demo"}:
                raise DemoError(f"unexpected external labels: {doc['global']['external_labels']}")

            names = (
                "reloader_reloads_total",
                "reloader_reloads_failed_total",
                "reloader_last_reload_successful",
                "reloader_config_apply_operations_total",
            )
            print("   config-reloader's own /metrics:")
            for name, value in metric_values(reloader_url, names).items():
                print(f"     {name} {value}")
            prom_ok = metric_values(prom_url, ("prometheus_config_last_reload_successful",))
            for name, value in prom_ok.items():
                print(f"   Prometheus's: {name} {value}")

            print("6. Stopping config-reloader (SIGTERM) and Prometheus")
            sidecar.send_signal(signal.SIGTERM)
            code = sidecar.wait(timeout=10)
            if code != 0:
                raise DemoError(f"config-reloader exited with {code} on SIGTERM, expected 0")


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="config-reloader-demo-") as tmp:
        try:
            demo(Path(tmp))
        except (DemoError, OSError, subprocess.SubprocessError, KeyError, ValueError) as exc:
            print(f"demo failed: {exc}", file=sys.stderr)
            for log in sorted(Path(tmp).glob("*.log")):
                tail = log.read_text(errors="replace").strip().splitlines()[-5:]
                print(
                    f"  last lines of {log.name}:",
                    *(f"    {line}" for line in tail),
                    sep="\n",
                    file=sys.stderr,
                )
            return 1
    print(f"Done in {time.monotonic() - started:.1f}s: everything stopped, temporary files removed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
