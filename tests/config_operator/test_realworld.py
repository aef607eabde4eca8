"""Real-world monitors (kube-prometheus, prometheus-operator's examples, istio, flux, rook, strimzi; see
realworld/*/SOURCES.txt) rendered as config-operator would, against golden files.

Two sets:
- each file with ``realworld/prometheusconfig-all.yaml``, a PrometheusConfig selecting everything (with
  the scrape class prometheus-operator's example monitors name, and the Secret the basic-auth one reads);
- kube-prometheus' ServiceMonitors together, with the config-relevant fields of kube-prometheus'
  Prometheus CR (``PROMETHEUS_CR_FIELDS``): EndpointSlice discovery, select-all selectors, its version.

Every monitor is accepted. The one exception is prometheus-operator's scrape-class example PodMonitor,
which has no metadata.name (an API server would refuse it too): render says so in one line.

Each job is the one prometheus-operator 0.93 generates for it, but for these byte-level differences,
kept on purpose:
- quoting: PyYAML writes a string that reads as another type in single quotes ('true'), Go's yaml.v2
  in double quotes ("true"); the YAML values are the same;
- a user relabeling without ``action`` gets ``action: replace``; prometheus-operator writes none, but its
  CRD (and ours) default the field to ``replace`` on the API server, so in a cluster both say it (the
  real-world rules all set it anyway);
- outside the jobs: the ``rule_files`` and ``alerting`` sections follow the PrometheusConfig's own
  fields (these PrometheusConfigs set none), where prometheus-operator writes them from the Prometheus
  CR's rule selectors and alertmanagers.

``UPDATE_GOLDEN=1 pytest ...`` rewrites realworld/expected/; review the diff before committing.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from config_operator.render import render_files
from tests.support.filesd import target_file, to_file_sd
from tests.support.procs import PROMTOOL, require_binary

REALWORLD = Path(__file__).parent / "realworld"
MONITORS = sorted((REALWORLD / "monitors").rglob("*.yaml"))
EXPECTED = REALWORLD / "expected"
PC_ALL = REALWORLD / "prometheusconfig-all.yaml"
PROMETHEUS_CR = REALWORLD / "prometheus" / "kube-prometheus_manifests_prometheus-prometheus.yaml"
KUBE_PROMETHEUS = sorted((REALWORLD / "monitors" / "kube-prometheus").glob("manifests_*.yaml"))
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
# The Prometheus CR fields that shape scrape jobs, and are PrometheusConfig fields too. The others of
# the CR are about the pods (image, replicas, resources, ...) or belong to other issues' fields (probe,
# rule and scrapeConfig selectors; alerting's Service references).
PROMETHEUS_CR_FIELDS = (
    "serviceMonitorSelector",
    "serviceMonitorNamespaceSelector",
    "podMonitorSelector",
    "podMonitorNamespaceSelector",
    "serviceDiscoveryRole",
    "externalLabels",
    "version",
)
NAMELESS = {"example_user-guides_scrapeclass_scrapeclass-example-podmonitor.yaml"}


def _case(path: Path) -> str:
    return f"{path.parent.name}__{path.stem}"


def _check_golden(name: str, text: str) -> None:
    path = EXPECTED / f"{name}.yaml"
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text()


def _kube_prometheus_config(tmp_path: Path) -> Path:
    cr = yaml.safe_load(PROMETHEUS_CR.read_text())
    spec = {k: cr["spec"][k] for k in PROMETHEUS_CR_FIELDS if k in cr["spec"]}
    pc = {
        "apiVersion": "reloader.dev/v1alpha1",
        "kind": "PrometheusConfig",
        "metadata": {"name": cr["metadata"]["name"], "namespace": cr["metadata"]["namespace"]},
        "spec": spec,
    }
    path = tmp_path / "pc.yaml"
    path.write_text(yaml.safe_dump(pc))
    return path


def _monitor_count(path: Path) -> int:
    return sum(
        1
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict) and doc.get("kind") in ("ServiceMonitor", "PodMonitor")
    )


def test_the_real_world_set_is_all_there() -> None:
    assert len(MONITORS) == 29
    assert len(KUBE_PROMETHEUS) == 13


@pytest.mark.parametrize("path", MONITORS, ids=_case)
def test_real_world_monitor(path: Path) -> None:
    rendered = render_files([str(PC_ALL), str(path)])
    jobs = yaml.safe_load(rendered.text)["scrape_configs"]
    if path.name in NAMELESS:
        assert rendered.warnings == (f"{path}: document 1: ignored PodMonitor with no metadata.name",)
        assert jobs == []
        return
    assert rendered.warnings == ()  # accepted, nothing left out by the version gates
    assert len({j["job_name"].rsplit("/", 1)[0] for j in jobs}) == _monitor_count(path)
    _check_golden(_case(path), rendered.text)


def test_kube_prometheus_with_its_prometheus_cr(tmp_path: Path) -> None:
    rendered = render_files([str(_kube_prometheus_config(tmp_path)), *map(str, KUBE_PROMETHEUS)])
    assert rendered.warnings == ()
    jobs = yaml.safe_load(rendered.text)["scrape_configs"]
    assert len({j["job_name"].rsplit("/", 1)[0] for j in jobs}) == 13
    assert {sd["role"] for j in jobs for sd in j["kubernetes_sd_configs"]} == {"endpointslice"}
    _check_golden("kube-prometheus", rendered.text)


def _goldens() -> list[Path]:
    return sorted(EXPECTED.glob("*.yaml"))


@pytest.mark.e2e
@pytest.mark.parametrize("path", _goldens(), ids=lambda p: p.stem)
def test_promtool_accepts_real_world_golden(path: Path, tmp_path: Path) -> None:
    promtool = require_binary(PROMTOOL)
    swapped = to_file_sd(path.read_text(), tmp_path)
    config: dict[str, Any] = yaml.safe_load(swapped)
    for job in config["scrape_configs"]:
        target_file(tmp_path, job["job_name"]).write_text("[]")
    out = tmp_path / "prometheus.yaml"
    out.write_text(swapped)
    proc = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(out)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
