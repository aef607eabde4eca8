"""The generated relabeling, judged by a real Prometheus (Debian's, which has no Kubernetes discovery).

For each golden case: render the config exactly as the operator would, swap only the discovery blocks
for file_sd (tests/support/filesd.py), write the target groups Kubernetes discovery would give for one
small cluster (pre-filtered per job to its role and namespaces), start Prometheus, and read
/api/v1/targets?state=any. Every discovered target must show up, kept or dropped, and the kept ones
must carry exactly the labels prometheus-operator's relabeling gives them. The expectations are written
by hand from prometheus-operator's behaviour, not derived from the generated rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from config_operator.generate import compress
from config_operator.render import render_files
from reloader.render import Expansion, render
from tests.support.filesd import (
    Cluster,
    Container,
    ContainerPort,
    Pod,
    Service,
    ServicePort,
    target_file,
    to_file_sd,
    write_targets,
)
from tests.support.procs import Target, wait_for

pytestmark = pytest.mark.e2e

GOLDEN = Path(__file__).parent.parent / "config_operator" / "golden"

# Ports on 127.0.0.1 that nothing is expected to serve: scrape failures are fine, only relabeling
# is under test. Each container port has its own number so that addresses name their target.
PORTS = {
    ("web-1", "metrics"): 39101,
    ("web-1", "http"): 39102,
    ("web-2", "metrics"): 39103,
    ("web-2", "http"): 39104,
    ("canary-1", "metrics"): 39105,
    ("api-1", "http-metrics"): 39111,
    ("api-1", "admin"): 39112,
    ("api-1", "metrics"): 39113,
    ("api-1", "proxy-metrics"): 39114,
    ("exporter-shop", "metrics"): 39121,
    ("exporter-billing", "metrics"): 39122,
    ("exporter-monitoring", "metrics"): 39123,
    ("worker-1", "metrics"): 39131,
    ("worker-2", "metrics"): 39132,
    ("worker-3", "metrics"): 39133,
    ("worker-4", "debug"): 39134,
}


def _pod(
    namespace: str, name: str, labels: dict[str, str], *containers: tuple[str, list[str]], **kw: Any
) -> Pod:
    return Pod(
        namespace=namespace,
        name=name,
        labels=labels,
        containers=tuple(
            Container(c, tuple(ContainerPort(p, PORTS[(name, p)]) for p in ports)) for c, ports in containers
        ),
        **kw,
    )


def _addr(pod: str, port: str) -> str:
    return f"127.0.0.1:{PORTS[(pod, port)]}"


CLUSTER = Cluster(
    services=(
        Service(
            "shop",
            "web",
            {"app.kubernetes.io/name": "web", "tier": "frontend", "env": "prod", "team": "shop"},
            {"app": "web"},
            (ServicePort("metrics", "metrics"), ServicePort("http", "http")),
        ),
        Service(
            "shop",
            "web-canary",
            {"app.kubernetes.io/name": "web", "tier": "backend", "env": "staging", "legacy": "true"},
            {"app": "web-canary"},
            (ServicePort("metrics", "metrics"),),
        ),
        Service(
            "shop",
            "api",
            {
                "app": "api",
                "env": "dev",
                "team": "payments",
                "cost-center": "cc-42",
                "app.kubernetes.io/name": "api-svc",
            },
            {"app": "api"},
            (
                ServicePort("http-metrics", "http-metrics"),
                ServicePort("admin", "admin"),
                ServicePort("metrics", "metrics"),
            ),
        ),
        Service(
            "shop", "exporter", {"app": "exporter"}, {"app": "exporter"}, (ServicePort("metrics", "metrics"),)
        ),
        Service(
            "billing",
            "exporter",
            {"app": "exporter"},
            {"app": "exporter"},
            (ServicePort("metrics", "metrics"),),
        ),
        Service(
            "monitoring",
            "exporter",
            {"app": "exporter"},
            {"app": "exporter"},
            (ServicePort("metrics", "metrics"),),
        ),
    ),
    pods=(
        _pod("shop", "web-1", {"app": "web"}, ("web", ["metrics", "http"])),
        # Not ready: prometheus-operator does not filter on readiness, so it is still scraped.
        _pod("shop", "web-2", {"app": "web"}, ("web", ["metrics", "http"]), ready=False),
        _pod("shop", "canary-1", {"app": "web-canary"}, ("web", ["metrics"])),
        _pod(
            "shop",
            "api-1",
            {"app": "api", "version": "v2.3.1", "pod-template-hash": "abc"},
            ("api", ["http-metrics", "admin", "metrics"]),
            ("proxy", ["proxy-metrics"]),
        ),
        _pod("shop", "exporter-shop", {"app": "exporter"}, ("exporter", ["metrics"])),
        _pod("billing", "exporter-billing", {"app": "exporter"}, ("exporter", ["metrics"])),
        _pod("monitoring", "exporter-monitoring", {"app": "exporter"}, ("exporter", ["metrics"])),
        _pod("batch", "worker-1", {"app": "worker", "queue": "emails"}, ("worker", ["metrics"])),
        _pod("batch", "worker-2", {"app": "worker", "canary": "true"}, ("worker", ["metrics"])),
        _pod(
            "batch", "worker-3", {"app": "worker", "queue": "sms"}, ("worker", ["metrics"]), phase="Succeeded"
        ),
        _pod("batch", "worker-4", {"app": "worker"}, ("worker", ["debug"])),
    ),
)


def svc_target(
    service: str, pod: str, port: str, *, ns: str = "shop", container: str = "", **extra: str
) -> dict[str, str]:
    """The labels prometheus-operator gives a kept ServiceMonitor target; job defaults to the service."""
    return {
        "instance": _addr(pod, port),
        "namespace": ns,
        "service": service,
        "pod": pod,
        "container": container or _container_of(pod, port),
        "endpoint": port,
        "job": service,
        **extra,
    }


def _container_of(pod: str, port: str) -> str:
    for p in CLUSTER.pods:
        if p.name == pod:
            for c in p.containers:
                if any(cp.name == port for cp in c.ports):
                    return c.name
    raise KeyError((pod, port))


@dataclass
class Case:
    """Expected kept targets per job (final labels), plus optional checks on the raw API answer."""

    kept: dict[str, list[dict[str, str]]]
    dropped: dict[str, set[str]] = field(default_factory=dict)
    """job -> pod names that must be among the dropped targets."""
    check: Callable[[list[dict[str, Any]]], None] | None = None


def _check_several_endpoints(active: list[dict[str, Any]]) -> None:
    urls = {t["scrapePool"]: t["scrapeUrl"] for t in active}
    assert urls["serviceMonitor/shop/api/0"] == f"http://{_addr('api-1', 'http-metrics')}/metrics"
    # scheme HTTPS was written lower case; path and params per endpoint.
    assert (
        urls["serviceMonitor/shop/api/1"]
        == f"https://{_addr('api-1', 'admin')}/admin/metrics?format=prometheus&module=http_2xx"
    )
    by_pool = {t["scrapePool"]: t for t in active}
    assert by_pool["serviceMonitor/shop/api/0"]["scrapeInterval"] == "15s"
    assert by_pool["serviceMonitor/shop/api/0"]["scrapeTimeout"] == "10s"


CASES: dict[str, Case] = {
    "match_labels": Case(
        kept={
            "serviceMonitor/shop/web/0": [
                svc_target("web", "web-1", "metrics"),
                svc_target("web", "web-2", "metrics"),
            ]
        },
        dropped={"serviceMonitor/shop/web/0": {"canary-1", "api-1", "exporter-shop", "web-1"}},
    ),
    "selector_in": Case(
        kept={
            "serviceMonitor/shop/envs/0": [
                svc_target("web", "web-1", "metrics"),
                svc_target("web", "web-2", "metrics"),
                svc_target("web-canary", "canary-1", "metrics"),
            ]
        },
        dropped={"serviceMonitor/shop/envs/0": {"api-1", "exporter-shop"}},
    ),
    "selector_notin": Case(
        # NotIn keeps services without the label at all (exporter), as Kubernetes selectors do.
        kept={
            "serviceMonitor/shop/not-dev/0": [
                svc_target("web", "web-1", "metrics"),
                svc_target("web", "web-2", "metrics"),
                svc_target("web-canary", "canary-1", "metrics"),
                svc_target("exporter", "exporter-shop", "metrics"),
            ]
        },
        dropped={"serviceMonitor/shop/not-dev/0": {"api-1"}},
    ),
    "selector_exists": Case(
        kept={
            "serviceMonitor/shop/owned/0": [
                svc_target("web", "web-1", "metrics"),
                svc_target("web", "web-2", "metrics"),
                svc_target("api", "api-1", "metrics"),
            ]
        },
        dropped={"serviceMonitor/shop/owned/0": {"canary-1", "exporter-shop"}},
    ),
    "selector_does_not_exist": Case(
        kept={
            "serviceMonitor/shop/not-legacy/0": [
                svc_target("web", "web-1", "metrics"),
                svc_target("web", "web-2", "metrics"),
                svc_target("api", "api-1", "metrics"),
                svc_target("exporter", "exporter-shop", "metrics"),
            ]
        },
        dropped={"serviceMonitor/shop/not-legacy/0": {"canary-1"}},
    ),
    "namespace_any": Case(
        kept={
            "serviceMonitor/monitoring/everywhere/0": [
                svc_target("exporter", "exporter-shop", "metrics"),
                svc_target("exporter", "exporter-billing", "metrics", ns="billing"),
                svc_target("exporter", "exporter-monitoring", "metrics", ns="monitoring"),
            ]
        }
    ),
    "namespace_match_names": Case(
        kept={
            "serviceMonitor/monitoring/two-namespaces/0": [
                svc_target("exporter", "exporter-shop", "metrics"),
                svc_target("exporter", "exporter-billing", "metrics", ns="billing"),
            ]
        }
    ),
    "namespace_nil": Case(
        kept={"serviceMonitor/shop/local/0": [svc_target("exporter", "exporter-shop", "metrics")]},
    ),
    "several_endpoints": Case(
        kept={
            "serviceMonitor/shop/api/0": [svc_target("api", "api-1", "http-metrics")],
            "serviceMonitor/shop/api/1": [svc_target("api", "api-1", "admin")],
        },
        check=_check_several_endpoints,
    ),
    "relabelings": Case(
        # User relabelings run after the generated ones: node_name from the pod, major from version.
        kept={
            "serviceMonitor/shop/relabeled/0": [
                svc_target("api", "api-1", "metrics", node_name="node-1", major="v2"),
            ]
        },
    ),
    "job_label_target_labels": Case(
        kept={
            "serviceMonitor/shop/labelled/0": [
                svc_target(
                    "api",
                    "api-1",
                    "metrics",
                    job="api-svc",
                    team="payments",
                    cost_center="cc-42",
                    version="v2.3.1",
                ),
            ]
        },
    ),
    "pod_monitor": Case(
        kept={
            "podMonitor/batch/workers/0": [
                {
                    "instance": _addr("worker-1", "metrics"),
                    "namespace": "batch",
                    "pod": "worker-1",
                    "container": "worker",
                    "endpoint": "metrics",
                    "job": "batch/workers",
                    "queue": "emails",
                }
            ]
        },
        # canary label (DoesNotExist), Succeeded phase, and a port with another name.
        dropped={"podMonitor/batch/workers/0": {"worker-2", "worker-3", "worker-4"}},
    ),
}


def _targets(prom: Target) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    data = prom.get_json("/api/v1/targets?state=any")["data"]
    return list(data["activeTargets"]), list(data["droppedTargets"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_relabeling_in_real_prometheus(case: str, tmp_path: Path, prometheus_factory: Any) -> None:
    expected = CASES[case]
    config = render_files([str(GOLDEN / case / "input.yaml")]).text
    targets_dir = tmp_path / "targets"
    targets_dir.mkdir()
    written = write_targets(config, CLUSTER, targets_dir)
    assert set(written) == set(expected.kept), "the case's jobs changed; update the expectations"
    config_path = tmp_path / "prometheus.yaml"
    # As config-reloader renders it in a pod of the one shard there is: $(SHARD) is 0.
    env = {"POD_NAME": "prometheus-main-0", "SHARD": "0"}
    swapped = compress(to_file_sd(config, targets_dir).encode())
    config_path.write_bytes(b"".join(render([swapped], env, Expansion(), source=case, strict=True)))
    prom = prometheus_factory(config_path)

    def dropped_in(job: str, dropped: list[dict[str, Any]]) -> list[dict[str, str]]:
        # Dropped targets do not reliably carry their job in 2.42's API; their file names it.
        path = str(target_file(targets_dir, job))
        return [
            t["discoveredLabels"] for t in dropped if t["discoveredLabels"].get("__meta_filepath") == path
        ]

    def all_discovered() -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        active, dropped = _targets(prom)
        for job, count in written.items():
            seen = sum(t["scrapePool"] == job for t in active)
            seen += len(dropped_in(job, dropped))
            if seen != count:
                return None
        return active, dropped

    # Discovery updates reach the scrape manager at most every 5 s.
    active, dropped = wait_for(
        all_discovered, timeout_s=90, interval_s=0.5, what=f"targets of {sorted(written)}"
    )

    for job, kept in expected.kept.items():
        got = sorted(
            (t["labels"] for t in active if t["scrapePool"] == job),
            key=lambda labels: sorted(labels.items()),
        )
        assert got == sorted(kept, key=lambda labels: sorted(labels.items())), job
        # Nothing discovered is lost: what was not kept is listed as dropped.
        assert len(dropped_in(job, dropped)) == written[job] - len(kept)
    for job, pods in expected.dropped.items():
        dropped_pods = {labels.get("__meta_kubernetes_pod_name") for labels in dropped_in(job, dropped)}
        assert pods <= dropped_pods, job
    if expected.check is not None:
        expected.check(active)
