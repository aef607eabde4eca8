"""Probes -> probe/<namespace>/<name> jobs: the static and the ingress shape (written by hand from
prometheus-operator's generateProbeConfig), selection, rejections, and promtool. A real Prometheus
scraping a stand-in prober is in tests/e2e/test_operator_probes.py."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from config_operator.app import Operator
from config_operator.generate import generate, may_select
from config_operator.generate.probes import probe_jobs
from tests.config_operator.conftest import namespace, prometheus_config
from tests.fakekube import FakeKube
from tests.support.filesd import target_file, to_file_sd
from tests.support.operator_run import secret_config
from tests.support.polling import eventually
from tests.support.procs import PROMTOOL, require_binary

TMP_JOB = {"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}


def probe(
    name: str = "web", ns: str = "shop", labels: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"prober": {"url": "blackbox.monitoring.svc:9115"}, "module": "http_2xx"}
    body.update(spec)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Probe",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
        "spec": body,
    }


STATIC = {
    "staticConfig": {"static": ["https://example.com", "https://shop.example.com"], "labels": {"env": "prod"}}
}


def test_a_static_probe() -> None:
    p = probe(
        targets={
            "staticConfig": {
                **STATIC["staticConfig"],
                "relabelingConfigs": [{"sourceLabels": ["instance"], "targetLabel": "site"}],
            }
        },
        interval="60s",
        scrapeTimeout="10s",
        jobName="blackbox",
        params=[{"name": "debug", "values": ["true"]}, {"name": "module", "values": ["ignored"]}],
        metricRelabelings=[{"action": "labeldrop", "regex": "probe_ip_protocol"}],
    )
    assert probe_jobs(p, "30s") == [
        {
            "job_name": "probe/shop/web",
            "metrics_path": "/probe",
            "scrape_interval": "60s",
            "scrape_timeout": "10s",
            "params": {"module": ["http_2xx"], "debug": ["true"]},
            "static_configs": [
                {
                    "targets": ["https://example.com", "https://shop.example.com"],
                    "labels": {"env": "prod", "namespace": "shop"},
                }
            ],
            "relabel_configs": [
                TMP_JOB,
                {"target_label": "job", "replacement": "blackbox"},
                {"source_labels": ["__address__"], "target_label": "__param_target"},
                {"source_labels": ["__param_target"], "target_label": "instance"},
                {"target_label": "__address__", "replacement": "blackbox.monitoring.svc:9115"},
                {"source_labels": ["instance"], "target_label": "site", "action": "replace"},
            ],
            "metric_relabel_configs": [{"regex": "probe_ip_protocol", "action": "labeldrop"}],
        }
    ]


def test_a_probe_keeps_its_own_namespace_label_and_path_and_scheme() -> None:
    p = probe(
        targets={"staticConfig": {"static": ["a"], "labels": {"namespace": "elsewhere"}}},
        prober={
            "url": "10.0.0.1:9115",
            "path": "/custom",
            "scheme": "HTTPS",
            "proxyUrl": "http://proxy:3128",
        },
    )
    (job,) = probe_jobs(p, "30s")
    assert job["static_configs"][0]["labels"] == {"namespace": "elsewhere"}
    assert (job["metrics_path"], job["scheme"], job["proxy_url"]) == ("/custom", "https", "http://proxy:3128")


def test_an_ingress_probe() -> None:
    p = probe(
        targets={
            "ingress": {
                "selector": {
                    "matchLabels": {"app.kubernetes.io/name": "shop"},
                    "matchExpressions": [{"key": "probe", "operator": "NotIn", "values": ["off"]}],
                },
                "namespaceSelector": {"matchNames": ["shop", "web"]},
            },
            # staticConfig absent: the ingress is used.
        }
    )
    (job,) = probe_jobs(p, "30s")
    assert job["kubernetes_sd_configs"] == [{"role": "ingress", "namespaces": {"names": ["shop", "web"]}}]
    assert job["relabel_configs"] == [
        TMP_JOB,
        {
            "action": "keep",
            "source_labels": [
                "__meta_kubernetes_ingress_label_app_kubernetes_io_name",
                "__meta_kubernetes_ingress_labelpresent_app_kubernetes_io_name",
            ],
            "regex": "(shop);true",
        },
        {
            "action": "drop",
            "source_labels": [
                "__meta_kubernetes_ingress_label_probe",
                "__meta_kubernetes_ingress_labelpresent_probe",
            ],
            "regex": "(off);true",
        },
        {
            "source_labels": [
                "__meta_kubernetes_ingress_scheme",
                "__address__",
                "__meta_kubernetes_ingress_path",
            ],
            "separator": ";",
            "regex": "(.+);(.+);(.+)",
            "target_label": "__param_target",
            "replacement": "${1}://${2}${3}",
            "action": "replace",
        },
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_ingress_name"], "target_label": "ingress"},
        {
            "source_labels": ["__address__"],
            "separator": ";",
            "regex": "(.*)",
            "target_label": "__tmp_ingress_address",
            "replacement": "$1",
            "action": "replace",
        },
        {"source_labels": ["__param_target"], "target_label": "instance"},
        {"target_label": "__address__", "replacement": "blackbox.monitoring.svc:9115"},
    ]
    # Any namespace: no namespaces block; the Probe's own namespace by default.
    any_ns = probe(targets={"ingress": {"namespaceSelector": {"any": True}}})
    assert probe_jobs(any_ns, "30s")[0]["kubernetes_sd_configs"] == [{"role": "ingress"}]
    own = probe(targets={"ingress": {}})
    assert probe_jobs(own, "30s")[0]["kubernetes_sd_configs"] == [
        {"role": "ingress", "namespaces": {"names": ["shop"]}}
    ]


def test_static_wins_over_ingress() -> None:
    (job,) = probe_jobs(probe(targets={**STATIC, "ingress": {}}), "30s")
    assert "static_configs" in job and "kubernetes_sd_configs" not in job


def pc(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "reloader.dev/v1alpha1",
        "kind": "PrometheusConfig",
        "metadata": {"name": "main", "namespace": "shop"},
        "spec": spec,
    }


PROBES = [
    probe("a", labels={"team": "x"}, targets=STATIC),
    probe("b", labels={"team": "y"}, targets=STATIC),
    probe("c", ns="other", labels={"team": "x"}, targets=STATIC),
]


@pytest.mark.parametrize(
    ("spec", "jobs"),
    [
        ({}, []),
        ({"probeSelector": {}}, ["probe/shop/a", "probe/shop/b"]),
        (
            {"probeSelector": {"matchLabels": {"team": "x"}}, "probeNamespaceSelector": {}},
            ["probe/other/c", "probe/shop/a"],
        ),
    ],
)
def test_selection(spec: dict[str, Any], jobs: list[str]) -> None:
    generated = generate(pc(**spec), [], [], [], [], probes=PROBES)  # type: ignore[arg-type]
    config = yaml.safe_load(generated.config)
    assert [j["job_name"] for j in config["scrape_configs"]] == jobs
    assert generated.probes == len(jobs)


BAD = [
    ("no prober", {"prober": None}, "spec.prober with a url is required"),
    (
        "prober url with a scheme",
        {"prober": {"url": "http://blackbox:9115"}},
        "url specified in spec.prober is invalid",
    ),
    ("prober port out of range", {"prober": {"url": "blackbox:99999"}}, "is invalid"),
    ("no targets", {"targets": {}}, "at least one of .spec.targets.staticConfig and .spec.targets.ingress"),
    ("unsupported field", {"tlsConfig": {}}, "unsupported field(s) in spec: tlsConfig"),
    (
        "unsupported prober field",
        {"prober": {"url": "b:1", "proxyConfig": {}}},
        "unsupported field(s) in spec.prober",
    ),
    (
        "timeout over interval",
        {"interval": "10s", "scrapeTimeout": "20s"},
        "greater than the scrape interval",
    ),
    ("bad interval", {"interval": "often"}, "spec.interval"),
    ("bad path", {"prober": {"url": "b:1", "path": "probe"}}, "must start with '/'"),
    (
        "bad label",
        {"targets": {"staticConfig": {"static": ["a"], "labels": {"a-b": "c"}}}},
        "not a valid label name",
    ),
    (
        "bad relabeling",
        {"targets": {"staticConfig": {"static": ["a"], "relabelingConfigs": [{"action": "x"}]}}},
        "relabelingConfigs[0]",
    ),
    ("bad params", {"params": [{"name": "x"}]}, "spec.params[0]"),
    (
        "bad ingress selector",
        {"targets": {"ingress": {"selector": {"matchLabels": {"a": 1}}}}},
        "spec.targets.ingress.selector",
    ),
]


@pytest.mark.parametrize(("what", "spec", "reason"), BAD, ids=[b[0] for b in BAD])
def test_a_malformed_probe_is_rejected_and_the_others_go_on(
    what: str, spec: dict[str, Any], reason: str
) -> None:
    bad = probe("bad", targets=STATIC)
    bad["spec"].update(spec)
    if bad["spec"].get("prober") is None:
        del bad["spec"]["prober"]
    generated = generate(pc(probeSelector={}), [], [], [], [], probes=[bad, probe("good", targets=STATIC)])  # type: ignore[arg-type]
    (rejected,) = generated.rejected
    assert (rejected.kind, rejected.name) == ("Probe", "bad")
    assert reason in rejected.reason
    assert [j["job_name"] for j in yaml.safe_load(generated.config)["scrape_configs"]] == ["probe/shop/good"]


@pytest.mark.e2e
def test_promtool_accepts_probe_jobs(tmp_path: Path) -> None:
    promtool = require_binary(PROMTOOL)
    probes = [
        probe("static", targets=STATIC, jobName="blackbox"),
        probe("ingress", targets={"ingress": {"selector": {"matchLabels": {"a": "b"}}}}),
    ]
    text = generate(pc(probeSelector={}), [], [], [], [], probes=probes).config.decode()  # type: ignore[arg-type]
    swapped = to_file_sd(text, tmp_path)
    for job in yaml.safe_load(swapped)["scrape_configs"]:
        if "file_sd_configs" in job:
            target_file(tmp_path, job["job_name"]).write_text("[]")
    config = tmp_path / "prometheus.yaml"
    config.write_text(swapped)
    done = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_may_select_knows_rules_and_probes() -> None:
    config = pc(probeSelector={"matchLabels": {"team": "x"}}, ruleSelector={}, ruleNamespaceSelector={})
    assert may_select(config, PROBES[0], [], kind="Probe")
    assert not may_select(config, PROBES[1], [], kind="Probe")
    assert not may_select(config, PROBES[2], [], kind="Probe")  # another namespace: none selected there
    rule = {"metadata": {"name": "r", "namespace": "other"}}
    assert may_select(config, rule, [], kind="PrometheusRule")
    assert not may_select(pc(), rule, [], kind="PrometheusRule")  # no ruleSelector
    # A namespace's labels matter once a rule or probe namespace selector is set.
    ns = {"metadata": {"name": "other"}}
    assert may_select(pc(ruleNamespaceSelector={}), ns, [], kind="Namespace")
    assert may_select(pc(probeNamespaceSelector={}), ns, [], kind="Namespace")
    assert not may_select(pc(), ns, [], kind="Namespace")


async def test_probes_in_the_cluster_follow_their_namespace(kube: FakeKube, operator: Operator) -> None:
    kube.create(namespace("web", probes="on"))
    kube.create(
        prometheus_config("main", probeSelector={}, probeNamespaceSelector={"matchLabels": {"probes": "on"}})
    )
    kube.create(probe("sites", ns="web", targets=STATIC))

    def config() -> str:
        return (secret_config(kube, "default", "prometheus-main") or b"").decode()

    await eventually(lambda: "job_name: probe/web/sites" in config(), what="the probe job")
    web = kube.get("namespaces", "", "web")
    web["metadata"]["labels"]["probes"] = "off"
    kube.update(web)
    await eventually(lambda: config() and "probe/web/sites" not in config(), what="the probe job to go")
