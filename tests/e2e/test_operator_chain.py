"""The whole chain: operator -> Secret -> (kubelet) -> volume -> config-reloader -> a real Prometheus.

- The operator runs in-process against the fake API server and writes the Secret.
- The test stands in for the kubelet: it projects the Secret's key into a directory the way a Secret
  volume is updated (``..<timestamp>/prometheus.yaml.gz``, then one rename of the ``..data`` symlink).
  Debian's Prometheus has no Kubernetes discovery, so while projecting it swaps each job's
  kubernetes_sd_configs for file_sd_configs (tests/support/filesd.py) and re-gzips; every other byte is
  the operator's.
- ``config-reloader`` (a real process) renders the volume's file, expanding $(POD_NAME), and reloads a
  real Prometheus, whose /api/v1/status/config shows what is in force.

Blocking helpers (process start-up, HTTP polls) run in threads, so the event loop keeps serving the
fake API server and the operator meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from config_operator.app import Settings
from config_operator.generate import SECRET_KEY
from tests.fakekube import FakeKube
from tests.support.filesd import target_file, to_file_sd
from tests.support.operator_run import running_operator, secret_config
from tests.support.procs import Target, require_binary
from tests.support.rbac import denied_anywhere
from tests.support.reloader_proc import K8sVolume, Reloader, start_reloader

pytestmark = pytest.mark.e2e

SECRET = "prometheus-main"
POD_NAME = "prometheus-main-0"


def prometheus_config() -> dict[str, Any]:
    return {
        "apiVersion": "reloader.dev/v1alpha1",
        "kind": "PrometheusConfig",
        "metadata": {"name": "main", "namespace": "default"},
        "spec": {
            "serviceMonitorSelector": {"matchLabels": {"team": "chain"}},
            "scrapeInterval": "15s",
            "externalLabels": {"cluster": "chain-test", "replica": "$(POD_NAME)"},
        },
    }


def service_monitor(name: str, port: str) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": name, "namespace": "default", "labels": {"team": "chain"}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "endpoints": [{"port": port, "interval": "30s"}],
        },
    }


async def poll(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll a (maybe blocking) predicate in a thread until it is truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last: Any = None
    while loop.time() < deadline:
        try:
            last = await asyncio.to_thread(predicate)
        except (OSError, ValueError, KeyError) as exc:
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(0.2)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}; last value: {last!r}")


class Kubelet:
    """Projects the operator's Secret into a Secret-volume directory, with file_sd for discovery."""

    def __init__(self, kube: FakeKube, root: Path) -> None:
        self.kube = kube
        self.volume = K8sVolume(root / "config")
        self.targets = root / "targets"
        self.targets.mkdir()
        self.projected_rv = ""

    def secret_yaml(self) -> str | None:
        """The operator's config in the Secret now, or None before it writes one."""
        config = secret_config(self.kube, "default", SECRET)
        return None if config is None else config.decode()

    def sync(self) -> str:
        """Project the Secret as it is now; return the config text as projected (file_sd, not yet rendered)."""
        secret = self.kube.get("secrets", "default", SECRET)
        operator_yaml = gzip.decompress(base64.b64decode(secret["data"][SECRET_KEY])).decode()
        projected = to_file_sd(operator_yaml, self.targets)
        for job in yaml.safe_load(projected).get("scrape_configs") or []:
            # No targets: the test is about the config in force, not about scraping.
            target_file(self.targets, job["job_name"]).write_text("[]")
        self.volume.update({SECRET_KEY: gzip.compress(projected.encode(), mtime=0)})
        self.projected_rv = secret["metadata"]["resourceVersion"]
        return projected


def _expanded(projected: str) -> str:
    """The projection as the reloader renders it in the pod (one shard: SHARD is 0)."""
    return projected.replace("$(POD_NAME)", POD_NAME).replace("$(SHARD)", "0")


def jobs(config_yaml: str) -> list[str]:
    return [job["job_name"] for job in yaml.safe_load(config_yaml).get("scrape_configs") or []]


async def test_operator_secret_flows_through_the_reloader_into_prometheus(
    tmp_path: Path, prometheus_factory: Callable[..., Target]
) -> None:
    require_binary("prometheus")
    reloader: Reloader | None = None
    async with FakeKube.running(bookmark_interval_s=0.5) as kube:
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
        kube.create(service_monitor("api", "web"))
        kube.create(prometheus_config())
        try:
            async with running_operator(kube, Settings(identity="chain-operator", resync_interval_s=0)):
                kubelet = Kubelet(kube, tmp_path)
                await poll(kubelet.secret_yaml, 60, "the operator's Secret")
                projected = kubelet.sync()
                assert "$(POD_NAME)" in projected  # expanded by the reloader, not by the operator

                # Prometheus starts on a bootstrap config; the reloader's first apply replaces it.
                out = tmp_path / "out" / "prometheus.env.yaml"
                out.parent.mkdir()
                out.write_text("global:\n  scrape_interval: 1m\n")
                prometheus = await asyncio.to_thread(prometheus_factory, out)
                reloader = await asyncio.to_thread(
                    start_reloader,
                    tmp_path,
                    f"--config-file={kubelet.volume.root / 'prometheus.yaml.gz'}",
                    f"--config-envsubst-file={out}",
                    f"--reload-url={prometheus.reload_url}",
                    "--delay-interval=100ms",
                    env={"POD_NAME": POD_NAME, "SHARD": "0"},
                )

                in_force = await poll(
                    lambda: "serviceMonitor/default/api/0" in (y := prometheus.config_yaml()) and y,
                    60,
                    "the operator's job in Prometheus",
                )
                loaded = yaml.safe_load(in_force)
                assert loaded["global"]["external_labels"] == {
                    "cluster": "chain-test",
                    "prometheus": "default/main",
                    "prometheus_replica": POD_NAME,
                    "replica": POD_NAME,
                }
                assert jobs(in_force) == ["serviceMonitor/default/api/0"]
                # What the reloader wrote is the projection, byte for byte, with $(POD_NAME) expanded.
                assert out.read_text() == _expanded(projected)

                # A new ServiceMonitor in the API flows all the way through.
                kube.create(service_monitor("db", "metrics"))
                await poll(
                    lambda: (y := kubelet.secret_yaml()) is not None and "serviceMonitor/default/db/0" in y,
                    60,
                    "the operator to update the Secret",
                )
                projected = kubelet.sync()
                in_force = await poll(
                    lambda: "serviceMonitor/default/db/0" in (y := prometheus.config_yaml()) and y,
                    60,
                    "the new job in Prometheus",
                )
                assert jobs(in_force) == ["serviceMonitor/default/api/0", "serviceMonitor/default/db/0"]
                assert out.read_text() == _expanded(projected)
                assert prometheus.metric("prometheus_config_last_reload_successful") == 1.0
                assert reloader.alive()
        finally:
            if reloader is not None:
                code = await asyncio.to_thread(reloader.stop)
                assert code == 0, reloader.log()[-2000:]
    assert denied_anywhere(kube.calls) == set()  # the example RBAC would have let it do all that
