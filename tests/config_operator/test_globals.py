"""The global section: prometheus-operator's default external labels, and the fields issue 10 adds."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from config_operator.generate import InvalidConfig, generate


def _pc(name: str = "main", namespace: str = "monitoring", **spec: Any) -> dict[str, Any]:
    return {"kind": "PrometheusConfig", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def _global(**spec: Any) -> dict[str, Any]:
    return dict(yaml.safe_load(generate(_pc(**spec), [], [], [], []).config)["global"])


def _config(**spec: Any) -> dict[str, Any]:
    return dict(yaml.safe_load(generate(_pc(**spec), [], [], [], []).config))


ALERTING = {"alertmanagers": [{"static": ["am:9093"]}]}


@pytest.mark.parametrize(
    ("spec", "labels"),
    [
        ({}, {"prometheus": "monitoring/main", "prometheus_replica": "$(POD_NAME)"}),
        (
            {"externalLabels": {"cluster": "eu", "zone": "$(ZONE)"}},
            {
                "cluster": "eu",
                "prometheus": "monitoring/main",
                "prometheus_replica": "$(POD_NAME)",
                "zone": "$(ZONE)",
            },
        ),
        (
            {"prometheusExternalLabelName": "instance_of"},
            {"instance_of": "monitoring/main", "prometheus_replica": "$(POD_NAME)"},
        ),
        (
            {"replicaExternalLabelName": "replica"},
            {"prometheus": "monitoring/main", "replica": "$(POD_NAME)"},
        ),
        ({"prometheusExternalLabelName": ""}, {"prometheus_replica": "$(POD_NAME)"}),
        ({"replicaExternalLabelName": ""}, {"prometheus": "monitoring/main"}),
        ({"prometheusExternalLabelName": "", "replicaExternalLabelName": ""}, {}),
        # Reserved names win over externalLabels (prometheus-operator ignores the user's value).
        (
            {"externalLabels": {"prometheus": "mine", "prometheus_replica": "x"}},
            {"prometheus": "monitoring/main", "prometheus_replica": "$(POD_NAME)"},
        ),
        # ...unless they were turned off.
        (
            {"replicaExternalLabelName": "", "externalLabels": {"prometheus_replica": "x"}},
            {"prometheus": "monitoring/main", "prometheus_replica": "x"},
        ),
    ],
)
def test_external_labels(spec: dict[str, Any], labels: dict[str, str]) -> None:
    got = _global(**spec)["external_labels"]
    assert got == labels
    assert list(got) == sorted(got)


def test_a_reserved_external_label_is_ignored_with_a_warning() -> None:
    generated = generate(_pc(externalLabels={"prometheus": "mine"}), [], [], [], [])
    assert generated.warnings == (
        "spec.externalLabels[prometheus]: ignored, 'prometheus' is a reserved external label",
    )
    assert generate(_pc(), [], [], [], []).warnings == ()


@pytest.mark.parametrize(
    ("spec", "labeldrops"),
    [
        ({}, ["prometheus_replica"]),
        ({"replicaExternalLabelName": "replica"}, ["replica"]),
        ({"replicaExternalLabelName": ""}, []),
        ({"prometheusExternalLabelName": ""}, ["prometheus_replica"]),
    ],
)
def test_alert_relabel_configs_drop_the_replica_label_first(
    spec: dict[str, Any], labeldrops: list[str]
) -> None:
    alerting = _config(alerting=ALERTING, **spec)["alerting"]
    assert alerting.get("alert_relabel_configs", []) == [
        {"action": "labeldrop", "regex": r} for r in labeldrops
    ]
    assert list(alerting)[-1] == "alertmanagers"


def test_no_alerting_section_without_alerting() -> None:
    assert "alerting" not in _config()


@pytest.mark.parametrize(
    "spec",
    [
        {"prometheusExternalLabelName": "not-a-label"},
        {"replicaExternalLabelName": "0replica"},
        {"replicaExternalLabelName": 1},
        {"externalLabels": {"bad-name": "x"}},
        {"externalLabels": {"ok": 1}},
        {"externalLabels": ["a"]},
        {"version": "two"},
        {"version": "1.8.0"},
    ],
)
def test_bad_label_fields_are_invalid_configs(spec: dict[str, Any]) -> None:
    with pytest.raises(
        InvalidConfig,
        match=r"spec\.(prometheusExternalLabelName|replicaExternalLabelName|externalLabels|version)",
    ):
        generate(_pc(**spec), [], [], [], [])
