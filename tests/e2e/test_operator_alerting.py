"""kube-prometheus' Alertmanager entry, end to end: promtool accepts the generated config (after the
file_sd swap for its discovery), and a real Prometheus, given the target groups Kubernetes discovery
(role endpointslice) would give, sends to the real Alertmanager that the keep rules select and drops the
others."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from config_operator.generate import generate
from tests.config_operator.test_alerting import kube_prometheus_spec, pc
from tests.support.filesd import alertmanager_target_file, to_file_sd
from tests.support.procs import PROMTOOL, Target, require_binary, wait_for

pytestmark = pytest.mark.e2e


def _kube_prometheus_config() -> str:
    return generate(pc(kube_prometheus_spec()), [], [], [], []).config.decode()  # type: ignore[arg-type]


def _endpointslice_target(port: int, service: str, port_name: str) -> dict[str, Any]:
    """What Kubernetes discovery (role endpointslice) would give for one Alertmanager pod's port."""
    return {
        "targets": [f"127.0.0.1:{port}"],
        "labels": {
            "__meta_kubernetes_namespace": "monitoring",
            "__meta_kubernetes_endpointslice_name": f"{service}-abcde",
            "__meta_kubernetes_endpointslice_address_type": "IPv4",
            "__meta_kubernetes_endpointslice_port_name": port_name,
            "__meta_kubernetes_endpointslice_port_protocol": "TCP",
            "__meta_kubernetes_endpointslice_endpoint_conditions_ready": "true",
            "__meta_kubernetes_service_name": service,
            "__meta_kubernetes_pod_name": f"{service}-0",
        },
    }


def test_promtool_accepts_kube_prometheus_alerting(tmp_path: Path) -> None:
    promtool = require_binary(PROMTOOL)
    swapped = to_file_sd(_kube_prometheus_config(), tmp_path)
    assert "kubernetes_sd_configs" not in swapped
    alertmanager_target_file(tmp_path, 0).write_text("[]")
    config = tmp_path / "prometheus.yaml"
    config.write_text(swapped)
    done = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.timeout(180)
def test_prometheus_finds_the_alertmanager_the_discovery_labels_describe(
    tmp_path: Path, prometheus_factory: Callable[..., Target], alertmanager_factory: Callable[..., Target]
) -> None:
    am_config = tmp_path / "alertmanager.yml"
    am_config.write_text("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
    am = alertmanager_factory(am_config)
    am_port = int(am.url.rsplit(":", 1)[1])
    targets = tmp_path / "targets"
    targets.mkdir()
    config = tmp_path / "prometheus.yaml"
    config.write_text(to_file_sd(_kube_prometheus_config(), targets))
    alertmanager_target_file(targets, 0).write_text(
        json.dumps(
            [
                _endpointslice_target(am_port, "alertmanager-main", "web"),
                # The same pod's other port, and another Service's "web": the keep rules drop both.
                _endpointslice_target(am_port + 1, "alertmanager-main", "reloader-web"),
                _endpointslice_target(am_port + 2, "alertmanager-operated", "web"),
            ]
        )
    )
    prometheus = prometheus_factory(config)

    def discovered() -> dict[str, Any] | None:
        data = prometheus.get_json("/api/v1/alertmanagers")["data"]
        return data if data["activeAlertmanagers"] else None

    data = wait_for(discovered, timeout_s=60, what="an active Alertmanager")
    assert [a["url"] for a in data["activeAlertmanagers"]] == [f"http://127.0.0.1:{am_port}/api/v2/alerts"]
    assert sorted(a["url"] for a in data["droppedAlertmanagers"]) == sorted(
        f"http://127.0.0.1:{am_port + i}/api/v2/alerts" for i in (1, 2)
    )
