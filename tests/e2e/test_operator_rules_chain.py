"""Rules, end to end: PrometheusRule -> the operator's rule ConfigMap (in the fake API server) -> a
ConfigMap volume as the kubelet projects it -> config-reloader (--watched-dir) -> a real Prometheus,
whose /api/v1/rules shows the groups.

The test stands in for the kubelet, as tests/e2e/test_operator_chain.py does: the Secret goes into one
volume, each rule ConfigMap into ``rules/<configmap>/`` (``..<timestamp>`` directories, one rename of
``..data``, stale names removed). A pod mounts the rule ConfigMaps at /etc/prometheus/rules/, where the
generated rule_files point; here that one prefix is rewritten to the test's rules directory while
projecting the Secret, and every other byte is the operator's. As in the example StatefulSet, one more
rule directory is mounted than exists (an optional ConfigMap volume is an empty directory).
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
from config_operator.informer import InformerSettings
from config_operator.queue import Backoff
from tests.fakekube import FakeKube
from tests.support.operator_run import running_operator
from tests.support.procs import Target, require_binary
from tests.support.rbac import denied_anywhere
from tests.support.reloader_proc import K8sVolume, Reloader, start_reloader

pytestmark = pytest.mark.e2e

NS = "monitoring"
PRS = "prometheusrules.monitoring.coreos.com"
MOUNTED = ("prometheus-main-rulefiles-0", "prometheus-main-rulefiles-1")
WAIT_S = 90.0  # generous: a shared 2-core machine, and Prometheus applies a reload when it can


def prometheus_rule(alert: str) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "checkout", "namespace": NS, "labels": {"role": "alert-rules"}},
        "spec": {
            "groups": [
                {
                    "name": "checkout.rules",
                    "rules": [
                        {"record": "job:up:sum", "expr": "sum by (job) (up)"},
                        {"alert": alert, "expr": "vector(1)", "for": "5m", "labels": {"severity": "page"}},
                    ],
                }
            ]
        },
    }


class Kubelet:
    """Projects the operator's Secret and rule ConfigMaps into volume directories, when they change."""

    def __init__(self, kube: FakeKube, root: Path) -> None:
        self.kube = kube
        self.config = K8sVolume(root / "config")
        self.rules_root = root / "rules"
        self.rules = {name: K8sVolume(self.rules_root / name) for name in MOUNTED}
        self._projected: dict[str, Any] = {}

    def sync(self) -> None:
        secret = self.kube.find("secrets", NS, "prometheus-main")
        if secret is not None and self._projected.get("secret") != secret["data"]:
            text = gzip.decompress(base64.b64decode(secret["data"][SECRET_KEY])).decode()
            text = text.replace("/etc/prometheus/rules/", f"{self.rules_root}/")
            self.config.update({SECRET_KEY: gzip.compress(text.encode(), mtime=0)})
            self._projected["secret"] = secret["data"]
        for name, volume in self.rules.items():
            cm = self.kube.find("configmaps", NS, name)
            data = (cm or {}).get("data") or {}
            if self._projected.get(name) != data:
                volume.update({k: v.encode() for k, v in data.items()})
                self._projected[name] = data


def rules_in_force(prometheus: Target) -> dict[str, list[str]]:
    """Group name -> the names of its rules, as Prometheus reports them."""
    groups = prometheus.get_json("/api/v1/rules")["data"]["groups"]
    return {g["name"]: [r["name"] for r in g["rules"]] for g in groups}


@pytest.mark.timeout(300)
async def test_prometheus_rules_reach_prometheus_and_follow_changes(
    tmp_path: Path, prometheus_factory: Callable[..., Target]
) -> None:
    require_binary("prometheus")
    reloader: Reloader | None = None
    settings = Settings(
        identity="rules-chain",
        resync_interval_s=0,
        informer=InformerSettings(backoff=Backoff(0.05, 0.5)),
        backoff=Backoff(0.05, 0.5),
    )
    async with FakeKube.running(bookmark_interval_s=0.5) as kube:
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        kube.create(prometheus_rule("CheckoutDown"))
        kube.create(
            {
                "apiVersion": "reloader.dev/v1alpha1",
                "kind": "PrometheusConfig",
                "metadata": {"name": "main", "namespace": NS},
                "spec": {
                    "ruleSelector": {"matchLabels": {"role": "alert-rules"}},
                    "evaluationInterval": "5s",
                },
            }
        )
        try:
            async with running_operator(kube, settings):
                kubelet = Kubelet(kube, tmp_path)

                async def synced(predicate: Callable[[], Any], what: str) -> Any:
                    """Keep projecting (the kubelet's periodic sync) until ``predicate`` holds."""

                    def step() -> Any:
                        kubelet.sync()
                        try:
                            return predicate()
                        except (OSError, ValueError, KeyError):
                            return None

                    async def poll() -> Any:
                        return await asyncio.to_thread(step)

                    deadline = asyncio.get_running_loop().time() + WAIT_S
                    while asyncio.get_running_loop().time() < deadline:
                        if result := await poll():
                            return result
                        await asyncio.sleep(0.2)
                    pytest.fail(f"timed out after {WAIT_S}s waiting for {what}")

                await synced(
                    lambda: (
                        kube.find("configmaps", NS, MOUNTED[0])
                        and kube.find("secrets", NS, "prometheus-main")
                    ),
                    "the operator's Secret and rule ConfigMap",
                )
                out = tmp_path / "out" / "prometheus.env.yaml"
                out.parent.mkdir()
                out.write_text("global:\n  scrape_interval: 1m\n")
                prometheus = await asyncio.to_thread(prometheus_factory, out)
                reloader = await asyncio.to_thread(
                    start_reloader,
                    tmp_path,
                    f"--config-file={kubelet.config.root / SECRET_KEY}",
                    f"--config-envsubst-file={out}",
                    f"--reload-url={prometheus.reload_url}",
                    *(f"--watched-dir={v.root}" for v in kubelet.rules.values()),
                    "--delay-interval=100ms",
                )

                await synced(
                    lambda: (
                        rules_in_force(prometheus).get("checkout.rules") == ["job:up:sum", "CheckoutDown"]
                    ),
                    "the PrometheusRule's group in Prometheus",
                )
                # The files are where the operator's rule_files says, under the name it gives them.
                config = yaml.safe_load(prometheus.config_yaml())
                assert config["rule_files"] == [f"{kubelet.rules_root}/{MOUNTED[0]}/*.yaml"]
                (visible,) = [
                    p.name for p in kubelet.rules[MOUNTED[0]].root.iterdir() if not p.name.startswith("..")
                ]
                uid = kube.get(PRS, NS, "checkout")["metadata"]["uid"]
                assert visible == f"{NS}-checkout-{uid}.yaml"

                # One rule changes: only the ConfigMap (not the Secret) changes, and Prometheus follows.
                secret_rv = kube.get("secrets", NS, "prometheus-main")["metadata"]["resourceVersion"]
                rule = kube.get(PRS, NS, "checkout")
                rule["spec"]["groups"][0]["rules"][1]["alert"] = "CheckoutUnreachable"
                kube.update(rule)
                await synced(
                    lambda: (
                        rules_in_force(prometheus).get("checkout.rules")
                        == ["job:up:sum", "CheckoutUnreachable"]
                    ),
                    "the changed rule in Prometheus",
                )
                assert kube.get("secrets", NS, "prometheus-main")["metadata"]["resourceVersion"] == secret_rv

                # The PrometheusRule goes: its group goes.
                kube.delete(PRS, NS, "checkout")
                await synced(lambda: "checkout.rules" not in rules_in_force(prometheus), "the group to go")
                assert prometheus.metric("prometheus_config_last_reload_successful") == 1.0
                assert reloader.alive()
        finally:
            if reloader is not None:
                code = await asyncio.to_thread(reloader.stop)
                assert code == 0, reloader.log()[-2000:]
    assert denied_anywhere(kube.calls) == set()
