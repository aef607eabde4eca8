"""The ``config-operator`` command: ``render`` in-process, ``run`` as a real process against the fake API."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import yaml
from click.testing import CliRunner

from config_operator import generate as g
from config_operator.cli import cli
from tests.config_operator.conftest import PCS, prometheus_config, service_monitor
from tests.fakekube import FakeKube
from tests.fakekube import kubeconfig as fake_kubeconfig
from tests.support.operator_run import secret_config
from tests.support.polling import eventually
from tests.support.procs import free_port

OPERATOR = str(Path(sys.executable).with_name("config-operator"))


def write_manifests(path: Path, *docs: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump_all(docs))
    return path


def test_render_prints_what_the_operator_would_write(tmp_path: Path) -> None:
    pc = prometheus_config("main")
    sm = service_monitor("api")
    bad = service_monitor("broken")
    bad["spec"]["endpoints"][0].update({"interval": "10s", "scrapeTimeout": "30s"})
    a = write_manifests(tmp_path / "a.yaml", pc, sm)
    b = write_manifests(tmp_path / "b.yaml", bad)
    result = CliRunner().invoke(cli, ["render", "-f", str(a), "-f", str(b)])
    assert result.exit_code == 0, result.output
    want = g.generate(pc, [sm, bad], [], [], []).config.decode()  # type: ignore[list-item, arg-type]
    assert result.stdout == want
    assert "ServiceMonitor default/broken" in result.stderr
    assert "Traceback" not in result.stderr


def test_render_errors_are_one_line_and_exit_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["render", "-f", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "missing.yaml" in line
    assert "Traceback" not in result.stderr


def test_render_picks_one_of_several_configs_by_name(tmp_path: Path) -> None:
    files = write_manifests(
        tmp_path / "x.yaml", prometheus_config("one"), prometheus_config("two", scrapeInterval="7s")
    )
    several = CliRunner().invoke(cli, ["render", "-f", str(files)])
    assert several.exit_code == 1
    assert "--name" in several.stderr
    picked = CliRunner().invoke(cli, ["render", "-f", str(files), "--name", "default/two"])
    assert picked.exit_code == 0, picked.stderr
    assert "scrape_interval: 7s" in picked.stdout


def test_run_rejects_impossible_leader_election_timing() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--leader-elect",
            "--leader-election-lease-duration=5",
            "--leader-election-renew-deadline=10",
        ],
    )
    assert result.exit_code == 2
    assert "renew-deadline" in result.stderr


@contextlib.asynccontextmanager
async def run_operator(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``config-operator run *args`` as a real process; killed at the end if it is still running."""
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    proc = await asyncio.create_subprocess_exec(
        OPERATOR,
        "run",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()


async def test_run_without_a_usable_kubeconfig_says_so_in_one_line(tmp_path: Path) -> None:
    async with run_operator(f"--kubeconfig={tmp_path / 'nope.yaml'}", "--listen-address=") as proc:
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 1
    [line] = stderr.decode().splitlines()
    assert "nope.yaml" in line


async def test_run_serves_endpoints_reconciles_and_stops_on_sigterm(kube: FakeKube, tmp_path: Path) -> None:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig.yaml")
    kube.create(service_monitor("api"))
    kube.create(prometheus_config("main"))
    port = free_port()
    async with run_operator(
        f"--kubeconfig={kubeconfig}",
        f"--listen-address=127.0.0.1:{port}",
        "--namespace=default",
        "--log-format=json",
    ) as proc:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:

            async def status(path: str) -> int:
                try:
                    async with session.get(base + path) as resp:
                        return resp.status
                except aiohttp.ClientError:
                    return 0

            await eventually(lambda: secret_config(kube, "default", "prometheus-main"), what="the Secret")
            health = {path: await status(path) for path in ("/healthz", "/readyz")}
            assert health == {"/healthz": 200, "/readyz": 200}
            async with session.get(base + "/metrics") as resp:
                text = await resp.text()
            for name in (
                "config_operator_reconciles_total",
                "config_operator_reconcile_errors_total",
                "config_operator_reconcile_duration_seconds_bucket",
                "config_operator_workqueue_depth",
                "config_operator_watch_restarts_total",
                "process_resident_memory_bytes",
            ):
                assert name in text, name
        cond = await eventually(
            lambda: (kube.get(PCS, "default", "main").get("status") or {}).get("conditions"), what="status"
        )
        assert cond[0]["status"] == "True"
        # --namespace=default: the namespaced kinds are listed and watched in default only.
        scoped = {
            c.namespace
            for c in kube.calls
            if c.resource in ("prometheusconfigs", "servicemonitors", "podmonitors")
        }
        assert scoped == {"default"}
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    lines = stderr.decode().splitlines()
    assert all(line.startswith("{") for line in lines), lines[:5]
    assert any('"msg": "stopped"' in line for line in lines)
    assert "Traceback" not in stderr.decode()


async def test_run_stops_on_sigint_while_the_api_is_unreachable(tmp_path: Path) -> None:
    # Nobody listens on that port: the informers keep backing off, and a signal still stops them cleanly.
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(fake_kubeconfig(f"http://127.0.0.1:{free_port()}"))
    async with run_operator(f"--kubeconfig={kubeconfig}", "--listen-address=") as proc:
        assert proc.stderr is not None
        seen: list[str] = []
        while not any("list/watch failed" in line for line in seen):
            line = (await asyncio.wait_for(proc.stderr.readline(), timeout=60)).decode()
            assert line, f"exited early: {seen}"
            seen.append(line)
        proc.send_signal(signal.SIGINT)
        _, rest = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, rest.decode()[-2000:]
    assert "Traceback" not in "".join(seen) + rest.decode()


async def test_run_with_a_taken_listen_address_says_so_in_one_line(kube: FakeKube, tmp_path: Path) -> None:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig.yaml")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with run_operator(f"--kubeconfig={kubeconfig}", f"--listen-address=127.0.0.1:{port}") as proc:
            _, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 1
    [line] = stderr.decode().splitlines()
    assert "address already in use" in line
    assert "Traceback" not in stderr.decode()
