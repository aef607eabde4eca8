"""Tenancy fields: what a PrometheusConfig imposes on every monitor's jobs (prometheus-operator 0.93's
namespacelabeler, ignoreNamespaceSelectors, the honor overrides and the global podTargetLabels)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from config_operator.generate import InvalidConfig, generate
from config_operator.generate.spec import SPEC_FIELDS
from config_operator.generate.tenancy import TENANCY_FIELDS

ENFORCED = {"target_label": "namespace", "replacement": "team-a"}


def _pc(**spec: Any) -> dict[str, Any]:
    return {
        "kind": "PrometheusConfig",
        "metadata": {"name": "main", "namespace": "monitoring"},
        "spec": {
            "serviceMonitorSelector": {},
            "serviceMonitorNamespaceSelector": {},
            "podMonitorSelector": {},
            "podMonitorNamespaceSelector": {},
            **spec,
        },
    }


def _sm(name: str = "web", namespace: str = "team-a", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {}, "endpoints": [{"port": "metrics"}], **spec},
    }


def _pm(name: str = "workers", namespace: str = "team-a", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {}, "podMetricsEndpoints": [{"port": "metrics"}], **spec},
    }


def _jobs(pc: dict[str, Any], sms: list[Any] = (), pms: list[Any] = ()) -> dict[str, dict[str, Any]]:  # type: ignore[assignment]
    generated = generate(pc, list(sms), list(pms), [], [])
    assert generated.rejected == ()
    return {j["job_name"]: j for j in yaml.safe_load(generated.config)["scrape_configs"]}


def _before_sharding(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["relabel_configs"][:-3])


def test_every_tenancy_field_is_a_spec_field() -> None:
    assert TENANCY_FIELDS <= SPEC_FIELDS


def test_the_enforced_label_comes_after_the_monitors_relabelings_and_before_sharding() -> None:
    sm = _sm(
        endpoints=[
            {
                "port": "metrics",
                "relabelings": [{"targetLabel": "namespace", "replacement": "team-b"}],
                "metricRelabelings": [{"targetLabel": "namespace", "replacement": "team-b"}],
            }
        ]
    )
    (job,) = _jobs(_pc(enforcedNamespaceLabel="namespace"), [sm]).values()
    rules = _before_sharding(job)
    assert rules[-2:] == [
        {"target_label": "namespace", "replacement": "team-b", "action": "replace"},
        ENFORCED,
    ]
    assert job["relabel_configs"][-1]["action"] == "keep"  # the sharding rules stay last
    assert job["metric_relabel_configs"][-1] == ENFORCED


def test_the_enforced_label_creates_metric_relabel_configs() -> None:
    (job,) = _jobs(_pc(enforcedNamespaceLabel="tenant"), [], [_pm()]).values()
    assert job["metric_relabel_configs"] == [{"target_label": "tenant", "replacement": "team-a"}]
    assert list(job)[-1] == "metric_relabel_configs"


@pytest.mark.parametrize(
    ("exclusions", "enforced_on"),
    [
        ([], {"serviceMonitor/team-a/web/0", "serviceMonitor/team-b/web/0", "podMonitor/team-a/workers/0"}),
        (
            [{"resource": "servicemonitors", "namespace": "team-a", "name": "web"}],
            {"serviceMonitor/team-b/web/0", "podMonitor/team-a/workers/0"},
        ),
        # No name: every object of that kind in the namespace.
        (
            [{"resource": "servicemonitors", "namespace": "team-a"}],
            {"serviceMonitor/team-b/web/0", "podMonitor/team-a/workers/0"},
        ),
        (
            [{"group": "monitoring.coreos.com", "resource": "podmonitors", "namespace": "team-a"}],
            {"serviceMonitor/team-a/web/0", "serviceMonitor/team-b/web/0"},
        ),
        # A reference to another kind, or another namespace, excludes nothing here.
        (
            [
                {"resource": "probes", "namespace": "team-a"},
                {"resource": "servicemonitors", "namespace": "team-c"},
            ],
            {"serviceMonitor/team-a/web/0", "serviceMonitor/team-b/web/0", "podMonitor/team-a/workers/0"},
        ),
    ],
)
def test_excluded_from_enforcement(exclusions: list[dict[str, str]], enforced_on: set[str]) -> None:
    pc = _pc(enforcedNamespaceLabel="namespace", excludedFromEnforcement=exclusions)
    jobs = _jobs(pc, [_sm(), _sm(namespace="team-b")], [_pm()])
    got = {
        name
        for name, job in jobs.items()
        if {"target_label": "namespace", "replacement": name.split("/")[1]} in job["relabel_configs"]
    }
    assert got == enforced_on
    for name, job in jobs.items():
        assert ("metric_relabel_configs" in job) == (name in enforced_on)


def test_additional_scrape_configs_are_not_enforced() -> None:
    secret = {
        "kind": "Secret",
        "metadata": {"name": "x", "namespace": "monitoring"},
        "stringData": {"k": "- job_name: raw\n  static_configs: [{targets: ['a:1']}]\n"},
    }
    pc = _pc(
        enforcedNamespaceLabel="namespace",
        overrideHonorLabels=True,
        additionalScrapeConfigs={"name": "x", "key": "k"},
    )
    config = yaml.safe_load(generate(pc, [], [], [], [secret]).config)
    assert config["scrape_configs"] == [{"job_name": "raw", "static_configs": [{"targets": ["a:1"]}]}]


@pytest.mark.parametrize(
    ("ignore", "namespace_selector", "names"),
    [
        (False, {"any": True}, None),
        (False, {"matchNames": ["x", "y"]}, ["x", "y"]),
        (False, None, ["team-a"]),
        (True, {"any": True}, ["team-a"]),
        (True, {"matchNames": ["x", "y"]}, ["team-a"]),
        (True, None, ["team-a"]),
    ],
)
def test_ignore_namespace_selectors(
    ignore: bool, namespace_selector: dict[str, Any] | None, names: list[str] | None
) -> None:
    extra = {} if namespace_selector is None else {"namespaceSelector": namespace_selector}
    for job in _jobs(_pc(ignoreNamespaceSelectors=ignore), [_sm(**extra)], [_pm(**extra)]).values():
        (sd,) = job["kubernetes_sd_configs"]
        assert sd.get("namespaces", {}).get("names") == names


@pytest.mark.parametrize(
    ("override_labels", "override_timestamps", "honor_labels", "expected"),
    [
        (False, False, True, {"honor_labels": True}),
        (True, False, True, {"honor_labels": False}),
        (False, True, True, {"honor_labels": True, "honor_timestamps": False}),
        (True, True, False, {"honor_labels": False, "honor_timestamps": False}),
    ],
)
def test_honor_overrides(
    override_labels: bool, override_timestamps: bool, honor_labels: bool, expected: dict[str, bool]
) -> None:
    sm = _sm(endpoints=[{"port": "metrics", "honorLabels": honor_labels}])
    pc = _pc(overrideHonorLabels=override_labels, overrideHonorTimestamps=override_timestamps)
    (job,) = _jobs(pc, [sm]).values()
    honor = {k: v for k, v in job.items() if k.startswith("honor_")}
    assert honor == expected
    assert list(job)[: 1 + len(expected)] == [
        "job_name",
        *expected,
    ]  # right after job_name, as prometheus-operator


def test_global_pod_target_labels_follow_the_monitors_own() -> None:
    sm = _sm(podTargetLabels=["tier"])
    jobs = _jobs(_pc(podTargetLabels=["team", "app.kubernetes.io/version"]), [sm], [_pm()])

    def copied(job: dict[str, Any]) -> list[str]:
        return [
            r["target_label"]
            for r in job["relabel_configs"]
            if r.get("source_labels", [""])[0].startswith("__meta_kubernetes_pod_label_")
        ]

    assert copied(jobs["serviceMonitor/team-a/web/0"]) == ["tier", "team", "app_kubernetes_io_version"]
    assert copied(jobs["podMonitor/team-a/workers/0"]) == ["team", "app_kubernetes_io_version"]


def test_monitors_are_not_modified() -> None:
    sm = _sm(podTargetLabels=["tier"], namespaceSelector={"any": True})
    before = copy.deepcopy(sm)
    _jobs(_pc(podTargetLabels=["team"], ignoreNamespaceSelectors=True), [sm])
    assert sm == before


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"enforcedNamespaceLabel": "bad-label"}, "enforcedNamespaceLabel"),
        ({"excludedFromEnforcement": {"namespace": "a"}}, "excludedFromEnforcement"),
        (
            {"excludedFromEnforcement": [{"resource": "pods", "namespace": "a"}]},
            r"excludedFromEnforcement\[0\]\.resource",
        ),
        (
            {"excludedFromEnforcement": [{"resource": "podmonitors"}]},
            r"excludedFromEnforcement\[0\]\.namespace",
        ),
        (
            {"excludedFromEnforcement": [{"resource": "podmonitors", "namespace": "a", "group": "apps"}]},
            r"excludedFromEnforcement\[0\]\.group",
        ),
        (
            {"excludedFromEnforcement": [{"resource": "podmonitors", "namespace": "a", "kind": "x"}]},
            r"excludedFromEnforcement\[0\]",
        ),
        ({"ignoreNamespaceSelectors": "yes"}, "ignoreNamespaceSelectors"),
        ({"overrideHonorLabels": 1}, "overrideHonorLabels"),
        ({"overrideHonorTimestamps": "true"}, "overrideHonorTimestamps"),
        ({"podTargetLabels": "team"}, "podTargetLabels"),
    ],
)
def test_malformed_tenancy_fields_are_invalid(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidConfig, match=rf"spec\.{field}"):
        generate(_pc(**spec), [], [], [], [])
