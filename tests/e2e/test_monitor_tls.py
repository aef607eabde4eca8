"""Generated TLS and auth settings, judged by a real Prometheus scraping real https servers on loopback.

Two path substitutions stand in for the Prometheus pod's volumes, as file_sd stands in for Kubernetes
discovery (design.md): ``/etc/prometheus/certs/`` (the tls-assets Secrets' mount) and
``/var/run/secrets/kubernetes.io/serviceaccount/`` (the pod's service account token and CA) become
directories of the test. Everything else in the config stays exactly as generated.

1. A ServiceMonitor with basicAuth from a Secret, a CA from a ConfigMap and a serverName, through the
   operator running against the fake API server: from its config and tls-assets Secrets, Prometheus
   scrapes an https server that demands those credentials and presents a certificate for that name.
2. kube-prometheus' kubelet, kube-state-metrics and apiserver ServiceMonitors: the discovered targets
   are kept with kube-prometheus' labels; the 5-second endpoints are scraped over https with the
   service account token, the apiserver's with its CA and server name ``kubernetes``.
"""

from __future__ import annotations

import asyncio
import base64
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from config_operator.app import Settings
from config_operator.generate import compress
from config_operator.render import render_files
from reloader.render import Expansion, render
from tests.fakekube import FakeKube
from tests.support.certs import CA, Pair
from tests.support.filesd import (
    Cluster,
    Container,
    ContainerPort,
    Pod,
    Service,
    ServicePort,
    as_endpointslice,
    target_file,
    to_file_sd,
    write_targets,
)
from tests.support.operator_run import running_operator, secret_config
from tests.support.procs import Target, free_port, wait_for

pytestmark = pytest.mark.e2e

REALWORLD = Path(__file__).parent.parent / "config_operator" / "realworld"
KUBE_PROMETHEUS = REALWORLD / "monitors" / "kube-prometheus"
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount/"
CERTS = "/etc/prometheus/certs/"
TOKEN = "service-account-token"


class _Server:
    """An https server on a free loopback port that answers /metrics* only with the right Authorization."""

    def __init__(self, context: ssl.SSLContext, authorization: str) -> None:
        self.port = free_port()
        self.seen: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                got = self.headers.get("Authorization", "")
                server.seen.append(self.path)
                body, status = (b"test_up 1\n", 200) if got == authorization else (b"no\n", 401)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def servers() -> Iterator[list[_Server]]:
    started: list[_Server] = []
    yield started
    for s in started:
        s.close()


def _context(pair: Pair) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pair.cert, pair.key)
    return context


def _targets(prom: Target) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    data = prom.get_json("/api/v1/targets?state=any")["data"]
    return data["activeTargets"], data["droppedTargets"]


def _by_pool(active: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for t in active:
        out.setdefault(t["scrapePool"], []).append(t)
    return out


def _start(prometheus_factory: Any, tmp_path: Path, config: str) -> Target:
    """Prometheus on ``config`` as config-reloader renders it in the pod of the one shard there is."""
    path = tmp_path / "prometheus.yaml"
    env = {"POD_NAME": "prometheus-main-0", "SHARD": "0"}
    path.write_bytes(
        b"".join(render([compress(config.encode())], env, Expansion(), source="test", strict=True))
    )
    return prometheus_factory(path)  # type: ignore[no-any-return]


async def test_basic_auth_and_a_ca_from_a_configmap_over_https(
    tmp_path: Path, prometheus_factory: Any, servers: list[_Server]
) -> None:
    """The operator (against the fake API server) writes the config and tls-assets Secrets from the
    monitor's Secret and ConfigMap; their data, projected as the pod's volumes would, gets Prometheus
    scraping the https target with the password and the CA."""
    ca = CA(tmp_path / "pki")
    basic = "Basic " + base64.b64encode(b"scraper:s3cret").decode()
    server = _Server(_context(ca.issue("app", hosts=("app.test", "127.0.0.1"))), basic)
    servers.append(server)
    endpoint = {
        "port": "https",
        "scheme": "https",
        "interval": "1s",
        "basicAuth": {
            "username": {"name": "auth", "key": "user"},
            "password": {"name": "auth", "key": "password"},
        },
        "tlsConfig": {"ca": {"configMap": {"name": "ca", "key": "ca.crt"}}, "serverName": "app.test"},
    }
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        {
            "apiVersion": "reloader.dev/v1alpha1",
            "kind": "PrometheusConfig",
            "metadata": {"name": "main", "namespace": "shop"},
            "spec": {"version": "2.42.0", "serviceMonitorSelector": {}},
        },
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": {"name": "app", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": "app"}}, "endpoints": [endpoint]},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "auth", "namespace": "shop"},
            "data": {
                "user": base64.b64encode(b"scraper").decode(),
                "password": base64.b64encode(b"s3cret").decode(),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "ca", "namespace": "shop"},
            "data": {"ca.crt": ca.cert_path.read_text()},
        },
    ]
    settings = Settings(workers=1, resync_interval_s=0, identity="tls-test")
    async with FakeKube.running(bookmark_interval_s=0.2) as kube:
        for obj in objects:
            kube.create(obj)
        async with running_operator(kube, settings):
            for _ in range(600):
                config_bytes = secret_config(kube, "shop", "prometheus-main")
                assets = kube.find("secrets", "shop", "prometheus-main-tls-assets-0")
                if config_bytes and assets and assets.get("data"):
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the operator wrote no config and tls-assets Secrets")
    assert set(assets["data"]) == {"1_shop_ca_ca.crt"}
    certs = tmp_path / "certs"  # the tls-assets volume
    certs.mkdir()
    for name, value in assets["data"].items():
        (certs / name).write_bytes(base64.b64decode(value))
    generated = config_bytes.decode().replace(CERTS, f"{certs}/")
    config = to_file_sd(generated, tmp_path)
    cluster = Cluster(
        services=(Service("shop", "app", {"app": "app"}, {"app": "app"}, (ServicePort("https", "https"),)),),
        pods=(
            Pod("shop", "app-1", {"app": "app"}, (Container("app", (ContainerPort("https", server.port),)),)),
        ),
    )
    assert write_targets(generated, cluster, tmp_path) == {"serviceMonitor/shop/app/0": 1}
    prom = await asyncio.to_thread(_start, prometheus_factory, tmp_path, config)

    def scraped() -> dict[str, Any] | None:
        (target,) = _targets(prom)[0] or [None]
        return target if target and target["health"] == "up" else None

    target = await asyncio.to_thread(wait_for, scraped, 60, 0.1, f"an up https target\n{prom.log()}")
    assert target["scrapeUrl"] == f"https://127.0.0.1:{server.port}/metrics"
    assert target["labels"]["endpoint"] == "https" and target["labels"]["service"] == "app"
    assert "/metrics" in server.seen


def _node_groups(
    port: int, *, ns: str, service: str, labels: dict[str, str], port_name: str, kind: str
) -> list[dict[str, Any]]:
    """What endpoints discovery gives for an Endpoints address with no Pod behind it (a Node, or none)."""
    meta = {
        "__meta_kubernetes_namespace": ns,
        "__meta_kubernetes_service_name": service,
        "__meta_kubernetes_endpoints_name": service,
        "__meta_kubernetes_endpoint_port_name": port_name,
        "__meta_kubernetes_endpoint_port_protocol": "TCP",
        "__meta_kubernetes_endpoint_ready": "true",
    }
    for k, v in labels.items():
        s = k.replace(".", "_").replace("/", "_").replace("-", "_")
        meta[f"__meta_kubernetes_service_label_{s}"] = v
        meta[f"__meta_kubernetes_service_labelpresent_{s}"] = "true"
    if kind:
        meta |= {
            "__meta_kubernetes_endpoint_address_target_kind": kind,
            "__meta_kubernetes_endpoint_address_target_name": "node-1",
        }
    return [{"targets": [f"127.0.0.1:{port}"], "labels": meta}]


@pytest.mark.parametrize("role", ["Endpoints", "EndpointSlice"])
def test_kube_prometheus_kubelet_kube_state_metrics_and_apiserver(
    tmp_path: Path, prometheus_factory: Any, servers: list[_Server], role: str
) -> None:
    ca = CA(tmp_path / "cluster-pki", "cluster-ca")
    other = CA(tmp_path / "kubelet-pki", "kubelet-self-signed")
    bearer = f"Bearer {TOKEN}"
    apiserver = _Server(_context(ca.issue("apiserver", hosts=("kubernetes", "127.0.0.1"))), bearer)
    kubelet_pair = other.issue("node-1", hosts=("node-1", "127.0.0.1"))
    kubelet = _Server(_context(kubelet_pair), bearer)
    ksm_main = _Server(_context(kubelet_pair), bearer)
    ksm_self = _Server(_context(kubelet_pair), bearer)
    servers.extend([apiserver, kubelet, ksm_main, ksm_self])
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text(TOKEN)
    (sa / "ca.crt").write_text(ca.cert_path.read_text())

    files = [
        KUBE_PROMETHEUS / f"manifests_{n}.yaml"
        for n in (
            "kubernetesControlPlane-serviceMonitorKubelet",
            "kubeStateMetrics-serviceMonitor",
            "kubernetesControlPlane-serviceMonitorApiserver",
        )
    ]
    # EndpointSlice discovery, as kube-prometheus' Prometheus CR sets it, must keep the same targets.
    pcs = list(yaml.safe_load_all((REALWORLD / "prometheusconfig-all.yaml").read_text()))
    pcs[0]["spec"]["serviceDiscoveryRole"] = role
    pc_path = tmp_path / "pc.yaml"
    pc_path.write_text(yaml.safe_dump_all(pcs))
    rendered = render_files([str(pc_path), *map(str, files)])
    assert rendered.warnings == ()
    generated = rendered.text.replace(SERVICE_ACCOUNT, f"{sa}/")
    config = to_file_sd(generated, tmp_path)
    ksm_labels = {
        "app.kubernetes.io/component": "exporter",
        "app.kubernetes.io/name": "kube-state-metrics",
        "app.kubernetes.io/part-of": "kube-prometheus",
    }
    cluster = Cluster(
        services=(
            Service(
                "monitoring",
                "kube-state-metrics",
                ksm_labels,
                {"app": "ksm"},
                (ServicePort("https-main", "https-main"), ServicePort("https-self", "https-self")),
            ),
        ),
        pods=(
            Pod(
                "monitoring",
                "kube-state-metrics-0",
                {"app": "ksm"},
                (
                    Container("kube-rbac-proxy-main", (ContainerPort("https-main", ksm_main.port),)),
                    Container("kube-rbac-proxy-self", (ContainerPort("https-self", ksm_self.port),)),
                ),
            ),
        ),
    )
    write_targets(generated, cluster, tmp_path)
    jobs = [j["job_name"] for j in yaml.safe_load(config)["scrape_configs"]]
    assert {
        sd["role"] for j in yaml.safe_load(generated)["scrape_configs"] for sd in j["kubernetes_sd_configs"]
    } == {role.lower()}

    def slices(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return as_endpointslice(groups) if role == "EndpointSlice" else groups

    kubelet_labels = {"app.kubernetes.io/name": "kubelet", "k8s-app": "kubelet"}
    for job in jobs:
        if "/kubelet/" in job:
            groups = _node_groups(
                kubelet.port,
                ns="kube-system",
                service="kubelet",
                labels=kubelet_labels,
                port_name="https-metrics",
                kind="Node",
            )
            groups += _node_groups(
                4194,
                ns="kube-system",
                service="kubelet",
                labels=kubelet_labels,
                port_name="cadvisor",
                kind="Node",
            )
            target_file(tmp_path, job).write_text(json.dumps(slices(groups)))
        elif "/kube-apiserver/" in job:
            groups = _node_groups(
                apiserver.port,
                ns="default",
                service="kubernetes",
                labels={"component": "apiserver", "provider": "kubernetes"},
                port_name="https",
                kind="",
            )
            target_file(tmp_path, job).write_text(json.dumps(slices(groups)))
    prom = _start(prometheus_factory, tmp_path, config)

    def discovered() -> dict[str, list[dict[str, Any]]] | None:
        pools = _by_pool(_targets(prom)[0])
        return pools if len(pools) == len(jobs) else None

    pools = wait_for(discovered, timeout_s=60, what=f"every job's targets\n{prom.log()}")
    kubelet_paths = ["/metrics", "/metrics/cadvisor", "/metrics/probes", "/metrics/slis"]
    for i, path in enumerate(kubelet_paths):
        (t,) = pools[f"serviceMonitor/monitoring/kubelet/{i}"]  # the cadvisor port is dropped
        assert t["labels"] == {
            "endpoint": "https-metrics",
            "instance": f"127.0.0.1:{kubelet.port}",
            "job": "kubelet",
            "metrics_path": path,
            "namespace": "kube-system",
            "node": "node-1",
            "service": "kubelet",
        }
        assert t["scrapeUrl"] == f"https://127.0.0.1:{kubelet.port}{path}"
    (main,) = pools["serviceMonitor/monitoring/kube-state-metrics/0"]
    # Its relabelings drop pod, service, endpoint and namespace: kube-state-metrics' own labels win.
    assert main["labels"] == {
        "container": "kube-rbac-proxy-main",
        "instance": f"127.0.0.1:{ksm_main.port}",
        "job": "kube-state-metrics",
    }
    (self_,) = pools["serviceMonitor/monitoring/kube-state-metrics/1"]
    assert self_["labels"] == {
        "container": "kube-rbac-proxy-self",
        "endpoint": "https-self",
        "instance": f"127.0.0.1:{ksm_self.port}",
        "job": "kube-state-metrics",
        "namespace": "monitoring",
        "pod": "kube-state-metrics-0",
        "service": "kube-state-metrics",
    }
    assert main["scrapeUrl"].startswith("https://") and self_["scrapeUrl"].startswith("https://")
    for i, path in enumerate(["/metrics", "/metrics/slis"]):
        (t,) = pools[f"serviceMonitor/monitoring/kube-apiserver/{i}"]
        assert t["labels"] == {
            "endpoint": "https",
            "instance": f"127.0.0.1:{apiserver.port}",
            "job": "apiserver",
            "namespace": "default",
            "service": "kubernetes",
        }
        assert t["scrapeUrl"] == f"https://127.0.0.1:{apiserver.port}{path}"

    # The 5-second endpoints get scraped at once: https with the token, the apiserver's verified
    # against the cluster CA as "kubernetes", the kubelet's with insecureSkipVerify.
    def up(pool: str) -> bool:
        (t,) = _by_pool(_targets(prom)[0])[pool]
        return bool(t["health"] == "up")

    for pool in ("serviceMonitor/monitoring/kubelet/3", "serviceMonitor/monitoring/kube-apiserver/1"):
        wait_for(lambda pool=pool: up(pool), timeout_s=60, what=f"{pool} up\n{_targets(prom)[0]}")
    assert "/metrics/slis" in apiserver.seen and "/metrics/slis" in kubelet.seen
