"""Probes, end to end: the generated job, run by a real Prometheus, scrapes a local HTTP server standing
in for the prober (a blackbox exporter) with the target and the module as URL parameters, and
/api/v1/targets shows the labels prometheus-operator's job gives: for static targets, and for Ingresses
(their discovery swapped for file_sd, the relabeling judged by the real engine)."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from config_operator.generate import generate
from tests.support.filesd import as_in_pod, target_file, to_file_sd
from tests.support.procs import Target, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def prober() -> Iterator[tuple[str, list[dict[str, list[str]]]]]:
    """``host:port`` of a stand-in prober, and the query parameters of every request it got."""
    seen: list[dict[str, list[str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/probe":
                self.send_error(404)
                return
            seen.append(urllib.parse.parse_qs(url.query))
            body = b"# TYPE probe_success gauge\nprobe_success 1\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.timeout(180)
def test_a_static_probe_scrapes_the_prober_for_each_target(
    tmp_path: Path, prometheus_factory: Callable[..., Target], prober: tuple[str, list[dict[str, list[str]]]]
) -> None:
    address, seen = prober
    pc = {
        "apiVersion": "reloader.dev/v1alpha1",
        "kind": "PrometheusConfig",
        "metadata": {"name": "main", "namespace": "monitoring"},
        "spec": {"probeSelector": {}, "probeNamespaceSelector": {}, "scrapeInterval": "1s"},
    }
    probe = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Probe",
        "metadata": {"name": "websites", "namespace": "shop"},
        "spec": {
            "prober": {"url": address},
            "module": "http_2xx",
            "targets": {
                "staticConfig": {"static": ["https://example.com/health"], "labels": {"env": "prod"}}
            },
        },
    }
    generated = generate(pc, [], [], [], [], probes=[probe])  # type: ignore[arg-type]
    assert generated.rejected == ()
    config = tmp_path / "prometheus.yaml"
    config.write_text(as_in_pod(generated.config.decode()))
    prometheus = prometheus_factory(config)

    def scraped() -> dict[str, Any] | None:
        active = prometheus.get_json("/api/v1/targets?state=active")["data"]["activeTargets"]
        return next((t for t in active if t["health"] == "up"), None)

    target = wait_for(scraped, timeout_s=60, what="the probe target to be scraped")
    assert target["labels"] == {
        "instance": "https://example.com/health",
        "job": "probe/shop/websites",
        "namespace": "shop",
        "env": "prod",
    }
    # Before relabeling: the target as the address, the module as a parameter label. The relabeling
    # then moves the address into __param_target, which the scrape URL carries as ?target=.
    assert target["discoveredLabels"]["__address__"] == "https://example.com/health"
    assert target["discoveredLabels"]["__param_module"] == "http_2xx"
    assert target["scrapePool"] == "probe/shop/websites"
    scrape = urllib.parse.urlsplit(target["scrapeUrl"])
    assert (scrape.netloc, scrape.path) == (address, "/probe")
    assert urllib.parse.parse_qs(scrape.query) == {
        "module": ["http_2xx"],
        "target": ["https://example.com/health"],
    }
    # The prober itself was asked for the target with the module.
    assert {"module": ["http_2xx"], "target": ["https://example.com/health"]} in seen


def _ingress_target(
    namespace: str, name: str, host: str, path: str, labels: dict[str, str]
) -> dict[str, Any]:
    """What Kubernetes discovery (role ingress) gives for one host/path rule of an Ingress."""
    meta = {
        "__meta_kubernetes_namespace": namespace,
        "__meta_kubernetes_ingress_name": name,
        "__meta_kubernetes_ingress_scheme": "https",
        "__meta_kubernetes_ingress_host": host,
        "__meta_kubernetes_ingress_path": path,
    }
    for k, v in labels.items():
        key = k.replace("/", "_").replace(".", "_").replace("-", "_")
        meta[f"__meta_kubernetes_ingress_label_{key}"] = v
        meta[f"__meta_kubernetes_ingress_labelpresent_{key}"] = "true"
    return {"targets": [host], "labels": meta}


@pytest.mark.timeout(180)
def test_an_ingress_probe_builds_its_targets_from_the_ingresses(
    tmp_path: Path, prometheus_factory: Callable[..., Target], prober: tuple[str, list[dict[str, list[str]]]]
) -> None:
    """The ingress relabeling, judged by the real engine through the file_sd swap: the selected
    Ingress' scheme, host and path become the target; the other Ingress is dropped."""
    address, seen = prober
    pc = {
        "metadata": {"name": "main", "namespace": "monitoring"},
        "spec": {"probeSelector": {}, "probeNamespaceSelector": {}, "scrapeInterval": "1s"},
    }
    probe = {
        "metadata": {"name": "ingresses", "namespace": "shop"},
        "spec": {
            "prober": {"url": address},
            "module": "http_2xx",
            "targets": {"ingress": {"selector": {"matchLabels": {"app.kubernetes.io/name": "shop"}}}},
        },
    }
    generated = generate(pc, [], [], [], [], probes=[probe])  # type: ignore[arg-type]
    assert generated.rejected == ()
    targets = tmp_path / "targets"
    targets.mkdir()
    config = tmp_path / "prometheus.yaml"
    config.write_text(as_in_pod(to_file_sd(generated.config.decode(), targets)))
    target_file(targets, "probe/shop/ingresses").write_text(
        json.dumps(
            [
                _ingress_target(
                    "shop", "storefront", "shop.example.com", "/health", {"app.kubernetes.io/name": "shop"}
                ),
                _ingress_target(
                    "shop", "admin", "admin.example.com", "/", {"app.kubernetes.io/name": "admin"}
                ),
            ]
        )
    )
    prometheus = prometheus_factory(config)

    def scraped() -> list[dict[str, Any]] | None:
        data = prometheus.get_json("/api/v1/targets?state=any")["data"]
        up = [t for t in data["activeTargets"] if t["health"] == "up"]
        return [up, data["droppedTargets"]] if up and data["droppedTargets"] else None

    up, dropped = wait_for(scraped, timeout_s=60, what="the selected Ingress probed, the other dropped")
    (target,) = up
    assert target["labels"] == {
        "instance": "https://shop.example.com/health",
        "job": "probe/shop/ingresses",
        "namespace": "shop",
        "ingress": "storefront",
    }
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(target["scrapeUrl"]).query) == {
        "module": ["http_2xx"],
        "target": ["https://shop.example.com/health"],
    }
    assert [t["discoveredLabels"]["__meta_kubernetes_ingress_name"] for t in dropped] == ["admin"]
    assert {"module": ["http_2xx"], "target": ["https://shop.example.com/health"]} in seen
