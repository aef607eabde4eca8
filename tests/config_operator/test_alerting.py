"""spec.alerting: kube-prometheus' Alertmanager entry (by Service), the static shape, credentials and
extra configs from Secrets, and every malformed entry as an InvalidConfig; then the real thing: promtool
accepts the result and a real Prometheus finds the real Alertmanager the discovery labels describe
(tests/e2e/test_operator_alerting.py).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from config_operator.app import Operator
from config_operator.generate import InvalidConfig, generate
from config_operator.generate.alerting import secret_names
from tests.config_operator.conftest import PCS, condition, events
from tests.fakekube import FakeKube
from tests.support.operator_run import secret_config
from tests.support.polling import eventually

REALWORLD = Path(__file__).parent / "golden_rules" / "realworld"


def kube_prometheus_spec() -> dict[str, Any]:
    """The alerting part of kube-prometheus' Prometheus resource, as it is."""
    prom = yaml.safe_load((REALWORLD / "kube-prometheus_manifests_prometheus-prometheus.yaml").read_text())
    return {
        "alerting": prom["spec"]["alerting"],
        "serviceDiscoveryRole": prom["spec"]["serviceDiscoveryRole"],
    }


def pc(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "reloader.dev/v1alpha1",
        "kind": "PrometheusConfig",
        "metadata": {"name": "k8s", "namespace": "monitoring"},
        "spec": spec,
    }


def secret(name: str, **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "monitoring"},
        "data": encoded,
    }


def alerting(spec: dict[str, Any], secrets: list[dict[str, Any]] | None = None) -> Any:
    generated = generate(pc(spec), [], [], [], secrets or [])  # type: ignore[arg-type]
    return yaml.safe_load(generated.config).get("alerting")


def test_kube_prometheus_alertmanager_entry() -> None:
    # Written from prometheus-operator's generateAlertmanagerConfig, not from our output.
    assert alerting(kube_prometheus_spec()) == {
        "alert_relabel_configs": [{"action": "labeldrop", "regex": "prometheus_replica"}],
        "alertmanagers": [
            {
                "kubernetes_sd_configs": [{"role": "endpointslice", "namespaces": {"names": ["monitoring"]}}],
                "api_version": "v2",
                "relabel_configs": [
                    {
                        "action": "keep",
                        "source_labels": ["__meta_kubernetes_service_name"],
                        "regex": "alertmanager-main",
                    },
                    {
                        "action": "keep",
                        "source_labels": ["__meta_kubernetes_endpointslice_port_name"],
                        "regex": "web",
                    },
                ],
            }
        ],
    }


def test_the_endpoints_role_by_default_and_every_field() -> None:
    spec = {
        "alerting": {
            "alertmanagers": [
                {
                    "name": "am",
                    "port": 9093,
                    "scheme": "HTTPS",
                    "pathPrefix": "/alertmanager",
                    "apiVersion": "V2",
                    "timeout": "10s",
                    "enableHttp2": False,
                    "tlsConfig": {
                        "caFile": "/etc/tls/ca.crt",
                        "serverName": "am.example",
                        "insecureSkipVerify": False,
                    },
                    "authorization": {"credentials": {"name": "am-auth", "key": "token"}},
                    "relabelings": [{"sourceLabels": ["__meta_kubernetes_pod_name"], "targetLabel": "pod"}],
                }
            ]
        }
    }
    (am,) = alerting(spec, [secret("am-auth", token="s3cret")])["alertmanagers"]
    assert list(am) == [
        "scheme",
        "path_prefix",
        "timeout",
        "enable_http2",
        "tls_config",
        "kubernetes_sd_configs",
        "authorization",
        "api_version",
        "relabel_configs",
    ]
    assert am["scheme"] == "https" and am["api_version"] == "v2"
    assert am["kubernetes_sd_configs"] == [{"role": "endpoints", "namespaces": {"names": ["monitoring"]}}]
    assert am["tls_config"] == {
        "ca_file": "/etc/tls/ca.crt",
        "server_name": "am.example",
        "insecure_skip_verify": False,
    }
    assert am["authorization"] == {"type": "Bearer", "credentials": "s3cret"}
    assert am["relabel_configs"][1] == {
        "action": "keep",
        "source_labels": ["__meta_kubernetes_pod_container_port_number"],
        "regex": "9093",
    }
    assert am["relabel_configs"][2] == {
        "source_labels": ["__meta_kubernetes_pod_name"],
        "target_label": "pod",
        "action": "replace",
    }


def test_basic_auth_and_bearer_token_file() -> None:
    spec = {
        "alerting": {
            "alertmanagers": [
                {
                    "name": "a",
                    "namespace": "other",
                    "port": "web",
                    "basicAuth": {
                        "username": {"name": "am", "key": "user"},
                        "password": {"name": "am", "key": "pass"},
                    },
                },
                {"name": "b", "port": "web", "bearerTokenFile": "/var/run/secrets/token"},
            ]
        }
    }
    a, b = alerting(spec, [secret("am", user="alice", **{"pass": "pw"})])["alertmanagers"]
    assert a["basic_auth"] == {"username": "alice", "password": "pw"}
    # The Service's namespace is the entry's; the Secrets are the PrometheusConfig's.
    assert a["kubernetes_sd_configs"][0]["namespaces"] == {"names": ["other"]}
    assert b["bearer_token_file"] == "/var/run/secrets/token"


def test_static_entries_and_the_extra_configs_from_secrets() -> None:
    spec = {
        "alerting": {"alertmanagers": [{"static": ["am-0:9093"], "apiVersion": "v2"}]},
        "additionalAlertManagerConfigs": {"name": "extra", "key": "managers.yaml"},
        "additionalAlertRelabelConfigs": {"name": "extra", "key": "relabel.yaml"},
    }
    extra = secret(
        "extra",
        **{
            "managers.yaml": "- static_configs:\n  - targets: [am.example.org:443]\n  scheme: https\n",
            "relabel.yaml": "- action: labeldrop\n  regex: team\n",
        },
    )
    # The replica labeldrop (issue 10) comes first, then the user's relabelings, as prometheus-operator.
    assert alerting(spec, [extra]) == {
        "alert_relabel_configs": [
            {"action": "labeldrop", "regex": "prometheus_replica"},
            {"action": "labeldrop", "regex": "team"},
        ],
        "alertmanagers": [
            {"api_version": "v2", "static_configs": [{"targets": ["am-0:9093"]}]},
            {"static_configs": [{"targets": ["am.example.org:443"]}], "scheme": "https"},
        ],
    }
    # The extra configs alone make an alerting section too.
    only = alerting({"additionalAlertManagerConfigs": {"name": "extra", "key": "managers.yaml"}}, [extra])
    assert only == {
        "alert_relabel_configs": [{"action": "labeldrop", "regex": "prometheus_replica"}],
        "alertmanagers": [{"static_configs": [{"targets": ["am.example.org:443"]}], "scheme": "https"}],
    }


def test_the_secrets_to_fetch() -> None:
    spec = {
        "alerting": {
            "alertmanagers": [
                {
                    "name": "a",
                    "port": "web",
                    "basicAuth": {
                        "username": {"name": "u", "key": "k"},
                        "password": {"name": "p", "key": "k"},
                    },
                },
                {"name": "b", "port": "web", "authorization": {"credentials": {"name": "t", "key": "k"}}},
                "not a mapping",
            ]
        },
        "additionalAlertManagerConfigs": {"name": "m", "key": "k"},
        "additionalAlertRelabelConfigs": {"name": "r", "key": "k"},
    }
    assert secret_names(spec) == {"u", "p", "t", "m", "r"}


AM = {"name": "alertmanager-main", "port": "web"}
BAD = [
    ("neither shape", {"namespace": "monitoring", "port": "web"}, "neither 'static' targets nor a Service"),
    (
        "raw Prometheus config",
        {"static_configs": [{"targets": ["a:1"]}]},
        "spec.additionalAlertManagerConfigs",
    ),
    ("not a mapping", "alertmanager:9093", "must be a mapping"),
    ("unknown field", {**AM, "sigv4": {}}, "unknown field(s) for a Service alertmanager: sigv4"),
    (
        "static with a Service field",
        {"static": ["a:1"], "name": "x"},
        "unknown field(s) next to 'static': name",
    ),
    ("no port", {"name": "alertmanager-main"}, "port must be"),
    ("empty name", {"name": "", "port": "web"}, "name must be"),
    ("bad scheme", {**AM, "scheme": "ftp"}, "unknown scheme 'ftp'"),
    ("bad api version", {**AM, "apiVersion": "v3"}, "apiVersion must be v1 or v2"),
    ("bad timeout", {**AM, "timeout": "soon"}, "timeout"),
    ("http2 not a boolean", {**AM, "enableHttp2": "yes"}, "enableHttp2 must be a boolean"),
    (
        "tls from a Secret",
        {**AM, "tlsConfig": {"ca": {"secret": {"name": "x", "key": "ca"}}}},
        "tlsConfig: ca not supported",
    ),
    ("cert without key", {**AM, "tlsConfig": {"certFile": "/c"}}, "certFile and keyFile go together"),
    (
        "two auths",
        {**AM, "bearerTokenFile": "/t", "authorization": {}},
        "bearerTokenFile and authorization can't be set",
    ),
    (
        "missing secret",
        {
            **AM,
            "basicAuth": {"username": {"name": "nope", "key": "u"}, "password": {"name": "nope", "key": "p"}},
        },
        "Secret monitoring/nope or its key 'u' not found",
    ),
    (
        "basic via authorization",
        {**AM, "authorization": {"type": "Basic", "credentials": {"name": "s", "key": "k"}}},
        "use basicAuth",
    ),
    (
        "bad relabeling",
        {**AM, "relabelings": [{"action": "explode"}]},
        "relabelings[0]: unknown relabel action",
    ),
    (
        "alert relabelings on 2.42",
        {**AM, "alertRelabelings": [{"action": "drop"}]},
        "alertRelabelings needs Prometheus >= 2.51",
    ),
]


@pytest.mark.parametrize(("what", "entry", "message"), BAD, ids=[b[0] for b in BAD])
def test_a_malformed_entry_is_an_invalid_config(what: str, entry: Any, message: str) -> None:
    with pytest.raises(InvalidConfig) as caught:
        alerting({"alerting": {"alertmanagers": [{"static": ["ok:9093"]}, entry]}})
    assert str(caught.value).startswith("spec.alerting.alertmanagers[1]")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"serviceDiscoveryRole": "Pods", "alerting": {"alertmanagers": [AM]}}, "Endpoints or EndpointSlice"),
        ({"additionalAlertManagerConfigs": {"name": "extra"}}, "needs 'name' and 'key'"),
        ({"additionalAlertManagerConfigs": {"name": "absent", "key": "k"}}, "Secret monitoring/absent"),
        (
            {"additionalAlertRelabelConfigs": {"name": "extra", "key": "bad.yaml"}},
            "must be a YAML list of mappings",
        ),
        (
            {"additionalAlertRelabelConfigs": {"name": "extra", "key": "broken.yaml"}},
            "not valid YAML at line",
        ),
    ],
)
def test_bad_extra_configs_are_invalid_configs(spec: dict[str, Any], message: str) -> None:
    extra = secret("extra", **{"bad.yaml": "action: drop\n", "broken.yaml": "- [\n"})
    with pytest.raises(InvalidConfig, match=message.replace("(", r"\(")):
        alerting(spec, [extra])


def test_credentials_never_reach_the_error_message() -> None:
    entry = {
        **AM,
        "basicAuth": {"username": {"name": "am", "key": "user"}, "password": {"name": "am", "key": "nope"}},
    }
    with pytest.raises(InvalidConfig) as caught:
        alerting({"alerting": {"alertmanagers": [entry]}}, [secret("am", user="alice-the-secret-user")])
    assert "alice-the-secret-user" not in str(caught.value)


# --- in a cluster: a malformed entry --------------------------------------------------------------


async def test_a_malformed_alerting_entry_is_a_false_condition_and_the_secret_stays(
    kube: FakeKube, operator: Operator
) -> None:
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}})
    kube.create(pc(kube_prometheus_spec()))
    good = await eventually(lambda: secret_config(kube, "monitoring", "prometheus-k8s"), what="the Secret")
    assert b"alertmanager-main" in good
    obj = kube.get(PCS, "monitoring", "k8s")
    obj["spec"]["alerting"]["alertmanagers"].append({"namespace": "monitoring", "port": "web"})
    kube.update(obj)
    cond = await eventually(
        lambda: (c := condition(kube, "monitoring", "k8s")) and c["status"] == "False" and c,
        what="Reconciled=False",
    )
    assert cond["reason"] == "InvalidConfig"
    assert "spec.alerting.alertmanagers[1]: neither 'static' targets nor a Service" in cond["message"]
    assert secret_config(kube, "monitoring", "prometheus-k8s") == good
    assert any("alertmanagers[1]" in e["message"] for e in events(kube, "monitoring", type_="Warning"))
