"""enforcedNamespaceLabel judged by a real Prometheus: a monitor that relabels ``namespace`` to another
team's still ends with its own, on its targets and on its samples; an excluded monitor keeps its value.

Debian's Prometheus has no Kubernetes discovery, so discovery is swapped for file_sd
(tests/support/filesd.py) and the target groups are what Kubernetes would discover for two Services in
``team-a``. Their pod's port is the Prometheus's own, so it scrapes itself and the metric relabelings
act on real samples.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from config_operator.generate import compress, generate
from reloader.render import Expansion, render
from tests.support.filesd import (
    Cluster,
    Container,
    ContainerPort,
    Pod,
    Service,
    ServicePort,
    to_file_sd,
    write_targets,
)
from tests.support.procs import Target, http_post, wait_for

pytestmark = pytest.mark.e2e

PASS_OFF = [{"targetLabel": "namespace", "replacement": "team-b"}]


def _sm(name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {
            "selector": {"matchLabels": {"app": app}},
            "endpoints": [
                {"port": "web", "interval": "1s", "relabelings": PASS_OFF, "metricRelabelings": PASS_OFF}
            ],
        },
    }


@pytest.mark.timeout(180)
def test_a_monitor_cannot_change_its_namespace(
    tmp_path: Path, prometheus_factory: Callable[..., Target]
) -> None:
    config_path = tmp_path / "prometheus.yaml"
    config_path.write_text("global:\n  scrape_interval: 1m\n")
    prometheus = prometheus_factory(config_path)
    port = int(prometheus.url.rsplit(":", 1)[1])

    pc = {
        "kind": "PrometheusConfig",
        "metadata": {"name": "main", "namespace": "monitoring"},
        "spec": {
            "serviceMonitorSelector": {},
            "serviceMonitorNamespaceSelector": {},
            "enforcedNamespaceLabel": "namespace",
            "excludedFromEnforcement": [
                {"resource": "servicemonitors", "namespace": "team-a", "name": "trusted"}
            ],
        },
    }
    generated = generate(pc, [_sm("sneaky", "self"), _sm("trusted", "other")], [], [], [])
    assert generated.rejected == ()
    web = (Container("prometheus", (ContainerPort("web", port),)),)
    cluster = Cluster(
        services=(
            Service("team-a", "self", {"app": "self"}, {"app": "self"}, (ServicePort("web", "web"),)),
            Service("team-a", "other", {"app": "other"}, {"app": "other"}, (ServicePort("web", "web"),)),
        ),
        pods=(Pod("team-a", "self-0", {"app": "self"}, web), Pod("team-a", "other-0", {"app": "other"}, web)),
    )
    targets_dir = tmp_path / "targets"
    targets_dir.mkdir()
    text = generated.config.decode()
    write_targets(text, cluster, targets_dir)
    swapped = compress(to_file_sd(text, targets_dir).encode())
    env = {"POD_NAME": "prometheus-main-0", "SHARD": "0"}
    config_path.write_bytes(b"".join(render([swapped], env, Expansion(), source="tenancy", strict=True)))
    status, body = http_post(prometheus.reload_url)
    assert status == 200, body

    def active() -> dict[str, dict[str, str]] | None:
        targets = prometheus.get_json("/api/v1/targets")["data"]["activeTargets"]
        by_job = {t["labels"]["job"]: t["labels"] for t in targets}
        return by_job if set(by_job) == {"self", "other"} else None

    labels = wait_for(active, timeout_s=60, interval_s=0.5, what="both jobs' targets")
    assert labels["self"]["namespace"] == "team-a"  # enforced over the monitor's relabeling
    assert labels["other"]["namespace"] == "team-b"  # excluded: its relabeling stands

    def samples() -> dict[str, str] | None:
        query = urllib.parse.urlencode({"query": "prometheus_build_info"})
        result = prometheus.get_json(f"/api/v1/query?{query}")["data"]["result"]
        by_job = {
            r["metric"].get("job", ""): r["metric"]["namespace"] for r in result if "namespace" in r["metric"]
        }
        return by_job if {"self", "other"} <= set(by_job) else None

    namespaces = wait_for(samples, timeout_s=60, interval_s=0.5, what="scraped samples of both jobs")
    assert namespaces["self"] == "team-a"  # the metric relabeling is overridden too
    assert namespaces["other"] == "team-b"
