"""Endpoint fields, credentials and TLS assets, scrape classes and version gates, as prometheus-operator
0.93 writes them: tables of (monitor, PrometheusConfig) -> the job's keys, or the reasons for a rejection."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml

from config_operator.generate import (
    CERTS_DIR,
    InvalidConfig,
    generate,
    shard_tls_assets,
    tls_assets_secret_name,
)
from config_operator.generate.assets import MAX_SECRET_DATA_BYTES
from config_operator.generate.versions import parse_version


def _pc(**spec: Any) -> Any:
    body = {
        "serviceMonitorSelector": {},
        "serviceMonitorNamespaceSelector": {},
        "podMonitorSelector": {},
        "podMonitorNamespaceSelector": {},
        "version": "2.42.0",
        **spec,
    }
    return {"kind": "PrometheusConfig", "metadata": {"name": "main", "namespace": "monitoring"}, "spec": body}


def _sm(endpoint: dict[str, Any], **spec: Any) -> Any:
    body = {"selector": {}, "endpoints": [{"port": "web", **endpoint}], **spec}
    return {"kind": "ServiceMonitor", "metadata": {"name": "app", "namespace": "shop"}, "spec": body}


def _pm(endpoint: dict[str, Any], **spec: Any) -> Any:
    body = {"selector": {}, "podMetricsEndpoints": [{"port": "web", **endpoint}], **spec}
    return {"kind": "PodMonitor", "metadata": {"name": "app", "namespace": "shop"}, "spec": body}


def _secret(name: str, **data: str) -> Any:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"kind": "Secret", "metadata": {"name": name, "namespace": "shop"}, "data": encoded}


def _configmap(name: str, **data: str) -> Any:
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": "shop"}, "data": data}


SECRETS = [_secret("auth", user="alice", pass_="s3cret", token="t0ken", key="KEY", cid="id-1")]
CONFIGMAPS = [_configmap("ca", **{"ca.crt": "CA PEM", "cert.pem": "CERT PEM"})]


def _run(monitor: Any, **spec: Any) -> Any:
    sms = [monitor] if monitor["kind"] == "ServiceMonitor" else []
    pms = [monitor] if monitor["kind"] == "PodMonitor" else []
    return generate(_pc(**spec), sms, pms, [], SECRETS, configmaps=CONFIGMAPS)


def _job(monitor: Any, **spec: Any) -> dict[str, Any]:
    out = _run(monitor, **spec)
    assert out.rejected == (), out.rejected
    (job,) = yaml.safe_load(out.config)["scrape_configs"]
    return job  # type: ignore[no-any-return]


def _keys(job: dict[str, Any]) -> list[str]:
    return [
        k for k in job if k not in ("job_name", "honor_labels", "kubernetes_sd_configs", "relabel_configs")
    ]


def _ref(key: str) -> dict[str, str]:
    return {"name": "auth", "key": key}


# (endpoint fields, expected job keys and values, in prometheus-operator's order)
SERVICE_MONITOR_FIELDS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"bearerTokenFile": "/var/run/token"}, {"bearer_token_file": "/var/run/token"}),
    (
        {
            "tlsConfig": {
                "caFile": "/ca",
                "certFile": "/c",
                "keyFile": "/k",
                "serverName": "s",
                "insecureSkipVerify": False,
            }
        },
        {
            "tls_config": {
                "insecure_skip_verify": False,
                "server_name": "s",
                "ca_file": "/ca",
                "cert_file": "/c",
                "key_file": "/k",
            }
        },
    ),
    (
        {"tlsConfig": {"minVersion": "TLS12", "maxVersion": "TLS13"}},
        {"tls_config": {"min_version": "TLS12", "max_version": "TLS13"}},
    ),
    ({"honorTimestamps": False}, {"honor_timestamps": False}),
    ({"proxyUrl": "http://proxy:3128"}, {"proxy_url": "http://proxy:3128"}),
    ({"followRedirects": False, "enableHttp2": True}, {"follow_redirects": False, "enable_http2": True}),
    (
        {"basicAuth": {"username": _ref("user"), "password": _ref("pass_")}},
        {"basic_auth": {"username": "alice", "password": "s3cret"}},
    ),
    ({"bearerTokenSecret": _ref("token")}, {"bearer_token": "t0ken"}),
    (
        {"authorization": {"credentials": _ref("token")}},
        {"authorization": {"type": "Bearer", "credentials": "t0ken"}},
    ),
    (
        {
            "oauth2": {
                "clientId": {"secret": _ref("cid")},
                "clientSecret": _ref("pass_"),
                "tokenUrl": "https://t",
                "scopes": ["a"],
                "endpointParams": {"z": "1", "a": "2"},
            }
        },
        {
            "oauth2": {
                "client_id": "id-1",
                "client_secret": "s3cret",
                "token_url": "https://t",
                "scopes": ["a"],
                "endpoint_params": {"a": "2", "z": "1"},
            }
        },
    ),
    (
        {
            "tlsConfig": {
                "ca": {"configMap": {"name": "ca", "key": "ca.crt"}},
                "cert": {"configMap": {"name": "ca", "key": "cert.pem"}},
                "keySecret": _ref("key"),
            }
        },
        {
            "tls_config": {
                "ca_file": f"{CERTS_DIR}/1_shop_ca_ca.crt",
                "cert_file": f"{CERTS_DIR}/1_shop_ca_cert.pem",
                "key_file": f"{CERTS_DIR}/0_shop_auth_key",
            }
        },
    ),
    (
        {
            "path": "/m",
            "scheme": "HTTPS",
            "params": {"b": ["1"]},
            "interval": "10s",
            "scrapeTimeout": "5s",
            "honorTimestamps": True,
            "followRedirects": True,
            "tlsConfig": {"insecureSkipVerify": True},
            "bearerTokenFile": "/t",
        },
        {
            "honor_timestamps": True,
            "scrape_interval": "10s",
            "scrape_timeout": "5s",
            "metrics_path": "/m",
            "params": {"b": ["1"]},
            "scheme": "https",
            "follow_redirects": True,
            "tls_config": {"insecure_skip_verify": True},
            "bearer_token_file": "/t",
        },
    ),
]


@pytest.mark.parametrize(("endpoint", "expected"), SERVICE_MONITOR_FIELDS)
def test_service_monitor_endpoint_fields(endpoint: dict[str, Any], expected: dict[str, Any]) -> None:
    job = _job(_sm(endpoint))
    assert {k: job[k] for k in _keys(job)} == expected
    assert _keys(job) == list(expected)  # prometheus-operator's key order


def test_tls_assets_hold_the_files_tls_config_points_at() -> None:
    out = _run(
        _sm(
            {
                "tlsConfig": {
                    "ca": {"secret": _ref("key")},
                    "cert": {"configMap": {"name": "ca", "key": "cert.pem"}},
                    "keySecret": _ref("key"),
                }
            }
        )
    )
    assert out.tls_assets == {"0_shop_auth_key": "KEY", "1_shop_ca_cert.pem": "CERT PEM"}


def test_pod_monitor_key_order() -> None:
    tls = {"tlsConfig": {"insecureSkipVerify": True}, "proxyUrl": "http://p:1", "enableHttp2": False}
    job = _job(_pm({**tls, "bearerTokenSecret": _ref("token")}))
    assert _keys(job) == ["enable_http2", "tls_config", "bearer_token", "proxy_url"]
    job = _job(_pm({**tls, "authorization": {"type": "Token", "credentials": _ref("token")}}))
    assert _keys(job) == ["enable_http2", "tls_config", "proxy_url", "authorization"]
    assert job["authorization"] == {"type": "Token", "credentials": "t0ken"}


def test_pod_monitor_fields() -> None:
    job = _job(
        _pm(
            {
                "port": None,
                "portNumber": 8080,
                "filterRunning": False,
                "basicAuth": {"username": _ref("user"), "password": _ref("pass_")},
                "oauth2": None,
            }
        )
    )
    assert job["basic_auth"] == {"username": "alice", "password": "s3cret"}
    rules = job["relabel_configs"]
    assert {
        "action": "keep",
        "source_labels": ["__meta_kubernetes_pod_container_port_number"],
        "regex": 8080,
    } in rules
    assert not any(r.get("source_labels") == ["__meta_kubernetes_pod_phase"] for r in rules)
    assert not any(r.get("target_label") == "endpoint" for r in rules)


def test_pod_monitor_running_filter_comes_right_after_the_job_name_rule() -> None:
    rules = _job(_pm({}))["relabel_configs"]
    assert rules[1] == {
        "action": "drop",
        "source_labels": ["__meta_kubernetes_pod_phase"],
        "regex": "(Failed|Succeeded)",
    }


def test_target_port_by_name_and_number() -> None:
    by_name = _job(_sm({"port": None, "targetPort": "http"}))["relabel_configs"]
    assert {
        "action": "keep",
        "source_labels": ["__meta_kubernetes_pod_container_port_name"],
        "regex": "http",
    } in by_name
    assert {"target_label": "endpoint", "replacement": "http"} in by_name
    by_number = _job(_sm({"port": None, "targetPort": 9090}))["relabel_configs"]
    assert {
        "action": "keep",
        "source_labels": ["__meta_kubernetes_pod_container_port_number"],
        "regex": 9090,
    } in by_number
    assert {"target_label": "endpoint", "replacement": "9090"} in by_number


def test_attach_metadata_node_goes_into_discovery() -> None:
    job = _job(_sm({}, attachMetadata={"node": True}))
    assert job["kubernetes_sd_configs"] == [
        {"role": "endpoints", "namespaces": {"names": ["shop"]}, "attach_metadata": {"node": True}}
    ]


def test_endpointslice_discovery_uses_the_endpointslice_labels() -> None:
    job = _job(_sm({}), serviceDiscoveryRole="EndpointSlice")
    assert job["kubernetes_sd_configs"][0]["role"] == "endpointslice"
    sources = [r.get("source_labels") for r in job["relabel_configs"]]
    assert ["__meta_kubernetes_endpointslice_port_name"] in sources
    assert [
        "__meta_kubernetes_endpointslice_address_target_kind",
        "__meta_kubernetes_endpointslice_address_target_name",
    ] in sources
    assert not any(s and any(x.startswith("__meta_kubernetes_endpoint_") for x in s) for s in sources)
    # A monitor's own role wins over the PrometheusConfig's.
    own = _job(_sm({}, serviceDiscoveryRole="Endpoints"), serviceDiscoveryRole="EndpointSlice")
    assert own["kubernetes_sd_configs"][0]["role"] == "endpoints"


# --- version gates ---------------------------------------------------------------------------------------

GATED: list[tuple[dict[str, Any], dict[str, Any], str, str]] = [
    # (endpoint fields, monitor spec fields, the key left out at 2.42, the version that has it)
    ({"trackTimestampsStaleness": True}, {}, "track_timestamps_staleness", "2.48.0"),
    ({"noProxy": "x", "proxyUrl": "http://p:1"}, {}, "no_proxy", "2.43.0"),
    ({"proxyFromEnvironment": True}, {}, "proxy_from_environment", "2.43.0"),
    ({}, {"scrapeProtocols": ["PrometheusProto"]}, "scrape_protocols", "2.49.0"),
    ({}, {"fallbackScrapeProtocol": "PrometheusText0.0.4"}, "fallback_scrape_protocol", "3.0.0"),
    ({}, {"nativeHistogramBucketLimit": 10}, "native_histogram_bucket_limit", "2.45.0"),
    ({}, {"nativeHistogramMinBucketFactor": "1.1"}, "native_histogram_min_bucket_factor", "2.50.0"),
    ({}, {"scrapeClassicHistograms": True}, "scrape_classic_histograms", "2.45.0"),
    ({}, {"convertClassicHistogramsToNHCB": True}, "convert_classic_histograms_to_nhcb", "3.0.0"),
    ({}, {"scrapeNativeHistograms": True}, "scrape_native_histograms", "3.8.0"),
]


@pytest.mark.parametrize(("endpoint", "spec", "key", "since"), GATED, ids=[g[2] for g in GATED])
def test_a_field_the_version_does_not_accept_is_left_out_with_a_warning(
    endpoint: dict[str, Any], spec: dict[str, Any], key: str, since: str
) -> None:
    old = _run(_sm(endpoint, **spec))
    assert old.rejected == ()
    (job,) = yaml.safe_load(old.config)["scrape_configs"]
    assert key not in job
    (warning,) = old.warnings
    assert warning.startswith("ServiceMonitor shop/app: ") and f"needs {since}" in warning
    new = _run(_sm(endpoint, **spec), version=since)
    (job,) = yaml.safe_load(new.config)["scrape_configs"]
    assert key in job and new.warnings == ()


def test_older_versions_lose_older_fields() -> None:
    out = _run(
        _sm({"honorTimestamps": False, "enableHttp2": True, "authorization": {"credentials": _ref("token")}}),
        version="2.8.0",
    )
    (job,) = yaml.safe_load(out.config)["scrape_configs"]
    assert not {"honor_timestamps", "enable_http2", "authorization"} & set(job)
    assert len(out.warnings) == 3


def test_prometheus_3_names_classic_histograms_differently() -> None:
    job = _job(_sm({}, scrapeClassicHistograms=True), version="3.1.0")
    assert job["always_scrape_classic_histograms"] is True and "scrape_classic_histograms" not in job


def test_version_parsing() -> None:
    assert parse_version("v2.42") == parse_version("2.42.0")
    assert parse_version("3.0.0-rc.0") < parse_version("3.0.0") < parse_version("3.0.1")
    with pytest.raises(InvalidConfig, match=r"spec\.version"):
        _run(_sm({}), version="latest")
    with pytest.raises(InvalidConfig, match="unsupported Prometheus version"):
        _run(_sm({}), version="1.8.0")


# --- scrape classes ----------------------------------------------------------------------------------------

CLASSES = [
    {
        "name": "mtls",
        "default": True,
        "tlsConfig": {
            "caFile": "/class/ca",
            "certFile": "/class/c",
            "keyFile": "/class/k",
            "insecureSkipVerify": True,
        },
        "relabelings": [{"targetLabel": "cls", "replacement": "yes"}],
        "metricRelabelings": [{"action": "drop", "sourceLabels": ["__name__"], "regex": "junk"}],
        "attachMetadata": {"node": True},
        "authorization": {"credentialsFile": "/class/token"},
    },
    {"name": "plain"},
]


def test_the_default_class_applies_to_monitors_that_name_none() -> None:
    job = _job(
        _sm({"metricRelabelings": [{"action": "drop", "sourceLabels": ["__name__"], "regex": "mine"}]}),
        scrapeClasses=CLASSES,
    )
    assert job["tls_config"] == {
        "insecure_skip_verify": True,
        "ca_file": "/class/ca",
        "cert_file": "/class/c",
        "key_file": "/class/k",
    }
    assert job["authorization"] == {"type": "Bearer", "credentials_file": "/class/token"}
    assert job["kubernetes_sd_configs"][0]["attach_metadata"] == {"node": True}
    class_rule = {"target_label": "cls", "replacement": "yes", "action": "replace"}
    rules = job["relabel_configs"]
    # After the generated rules (the endpoint label last of them), before sharding's.
    assert rules[rules.index(class_rule) - 1] == {"target_label": "endpoint", "replacement": "web"}
    assert [r["regex"] for r in job["metric_relabel_configs"]] == ["junk", "mine"]


def test_a_monitor_tls_config_keeps_its_own_settings_and_gets_only_the_class_files() -> None:
    job = _job(
        _sm({"tlsConfig": {"serverName": "s", "ca": {"configMap": {"name": "ca", "key": "ca.crt"}}}}),
        scrapeClasses=CLASSES,
    )
    assert job["tls_config"] == {
        "ca_file": f"{CERTS_DIR}/1_shop_ca_ca.crt",
        "server_name": "s",
        "cert_file": "/class/c",
        "key_file": "/class/k",
    }


def test_a_named_class_replaces_the_default_one() -> None:
    job = _job(_sm({}, scrapeClass="plain"), scrapeClasses=CLASSES)
    assert "tls_config" not in job and "authorization" not in job


def test_class_validation() -> None:
    out = _run(_sm({}, scrapeClass="nope"), scrapeClasses=CLASSES)
    assert "scrape class 'nope' is not in" in out.rejected[0].reason
    with pytest.raises(InvalidConfig, match="more than one default"):
        _run(_sm({}), scrapeClasses=[{"name": "a", "default": True}, {"name": "b", "default": True}])
    with pytest.raises(InvalidConfig, match="files only"):
        _run(_sm({}), scrapeClasses=[{"name": "a", "tlsConfig": {"ca": {"secret": _ref("key")}}}])


# --- rejections ------------------------------------------------------------------------------------------

REJECTED: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    (
        {"basicAuth": {"username": {"name": "gone", "key": "user"}, "password": _ref("pass_")}},
        {},
        "Secret shop/gone not found (wanted key 'user')",
    ),
    ({"bearerTokenSecret": {"name": "auth", "key": "nope"}}, {}, "Secret shop/auth has no key 'nope'"),
    (
        {"tlsConfig": {"ca": {"configMap": {"name": "ca", "key": "x"}}}},
        {},
        "ConfigMap shop/ca has no key 'x'",
    ),
    (
        {"tlsConfig": {"caFile": "/a", "ca": {"configMap": {"name": "ca", "key": "ca.crt"}}}},
        {},
        "cannot set both caFile and ca",
    ),
    ({"tlsConfig": {"certFile": "/c"}}, {}, "a client certificate and its key go together"),
    (
        {"tlsConfig": {"minVersion": "TLS13", "maxVersion": "TLS12"}},
        {},
        "maxVersion is lower than minVersion",
    ),
    ({"authorization": {"type": "Basic", "credentials": _ref("token")}}, {}, 'cannot be "Basic"'),
    (
        {"basicAuth": {"username": _ref("user"), "password": _ref("pass_")}, "bearerTokenFile": "/t"},
        {},
        "at most one of",
    ),
    ({"proxyUrl": "ftp://x"}, {}, "must be an http, https or socks5 URL"),
    ({"noProxy": "a"}, {}, "noProxy needs proxyUrl"),
    (
        {"bearerTokenFile": "/t"},
        {"arbitraryFSAccessThroughSMs": {"deny": True}},
        "bearerTokenFile reads a file",
    ),
    (
        {"tlsConfig": {"caFile": "/ca"}},
        {"arbitraryFSAccessThroughSMs": {"deny": True}},
        "tlsConfig reads files",
    ),
    ({"portNumber": 80}, {}, "unsupported field(s): portNumber"),
]


@pytest.mark.parametrize(("endpoint", "spec", "reason"), REJECTED, ids=[r[2] for r in REJECTED])
def test_rejected(endpoint: dict[str, Any], spec: dict[str, Any], reason: str) -> None:
    out = _run(_sm(endpoint), **spec)
    assert len(out.rejected) == 1 and reason in out.rejected[0].reason, out.rejected
    assert out.tls_assets == {}  # a rejected monitor's files are not written
    for secret_value in ("alice", "s3cret", "t0ken", "KEY", "CA PEM"):
        assert secret_value not in out.rejected[0].reason


def test_a_rejected_monitor_lists_every_reason() -> None:
    monitor = _sm(
        {
            "scheme": "gopher",
            "basicAuth": {"username": {"name": "gone", "key": "u"}, "password": _ref("nope")},
            "sigv4": {},
        },
        sampleRate=3,
    )
    monitor["spec"]["endpoints"].append({"port": "b", "interval": "soon"})
    (rejected,) = _run(monitor).rejected
    for part in (
        "unsupported field(s) in spec: sampleRate",
        "spec.endpoints[0]: unsupported field(s): sigv4",
        "spec.endpoints[0]: unknown scheme 'gopher'",
        "spec.endpoints[0]: basicAuth.username: Secret shop/gone not found",
        "spec.endpoints[0]: basicAuth.password: Secret shop/auth has no key 'nope'",
        "spec.endpoints[1]: interval: not a valid duration",
    ):
        assert part in rejected.reason
    assert "\n" not in rejected.reason


def test_the_lookups_are_recorded_for_the_reconciler_to_watch() -> None:
    out = _run(
        _sm(
            {
                "basicAuth": {"username": {"name": "gone", "key": "u"}, "password": _ref("pass_")},
                "tlsConfig": {"ca": {"configMap": {"name": "ca", "key": "ca.crt"}}},
            }
        )
    )
    assert {(r.kind, r.namespace, r.name) for r in out.references} >= {
        ("Secret", "shop", "gone"),
        ("Secret", "shop", "auth"),
        ("ConfigMap", "shop", "ca"),
    }


# --- tls-assets Secrets ----------------------------------------------------------------------------------


def test_tls_assets_are_split_as_prometheus_operator_splits_them() -> None:
    assert shard_tls_assets({}) == [{}]
    big = "x" * (MAX_SECRET_DATA_BYTES // 2)
    files = {"0_a": big, "0_b": big, "0_c": "small"}
    shards = shard_tls_assets(files)
    assert [sorted(s) for s in shards] == [["0_a"], ["0_b", "0_c"]]
    assert tls_assets_secret_name("main", 1) == "prometheus-main-tls-assets-1"


WEIRD: list[Any] = [None, 0, 7, True, "", "x", [], [1], ["x"], {}, {"a": 1}, {"name": "auth"}, [{"a": 1}]]


@pytest.mark.parametrize("kind", ["ServiceMonitor", "PodMonitor"])
def test_any_value_in_any_field_is_a_rejection_or_a_job_never_a_crash(kind: str) -> None:
    from config_operator.generate import (
        POD_METRICS_ENDPOINT_FIELDS,
        POD_MONITOR_FIELDS,
        SERVICE_MONITOR_ENDPOINT_FIELDS,
        SERVICE_MONITOR_FIELDS,
    )

    service = kind == "ServiceMonitor"
    build = _sm if service else _pm
    endpoint_fields = SERVICE_MONITOR_ENDPOINT_FIELDS if service else POD_METRICS_ENDPOINT_FIELDS
    spec_fields = (SERVICE_MONITOR_FIELDS if service else POD_MONITOR_FIELDS) - {
        "endpoints",
        "podMetricsEndpoints",
    }
    for value in WEIRD:
        for name in sorted(endpoint_fields):
            out = _run(build({name: value}))
            assert len(out.rejected) + out.service_monitors + out.pod_monitors == 1, (name, value)
        for name in sorted(spec_fields):
            out = _run(build({}, **{name: value}))
            assert len(out.rejected) + out.service_monitors + out.pod_monitors == 1, (name, value)


def test_any_value_in_nested_settings_is_a_rejection_or_a_job_never_a_crash() -> None:
    from config_operator.generate.assets import OAUTH2_FIELDS, PROXY_FIELDS, TLS_FIELDS

    nested = {
        "tlsConfig": TLS_FIELDS,
        "basicAuth": {"username", "password"},
        "authorization": {"type", "credentials"},
        "oauth2": OAUTH2_FIELDS | PROXY_FIELDS,
        "attachMetadata": {"node"},
    }
    for value in [*WEIRD, {"secret": {"name": "auth", "key": 1}}, {"configMap": []}]:
        for outer, inner in nested.items():
            for name in sorted(inner):
                where = {outer: {name: value}}
                monitor = _sm({}, **where) if outer == "attachMetadata" else _sm(where)
                out = _run(monitor)
                assert len(out.rejected) + out.service_monitors == 1, (outer, name, value)
        for name in ("name", "default", "tlsConfig", "authorization", "relabelings", "attachMetadata"):
            try:
                out = _run(_sm({}), scrapeClasses=[{"name": "c", name: value}])
            except InvalidConfig as exc:  # a malformed class is a malformed PrometheusConfig, said so
                assert "spec.scrapeClasses[0]" in str(exc), (name, value)
            else:
                assert out.service_monitors == 1, (name, value)


# (interval, scrapeTimeout, the PrometheusConfig's scrapeInterval) -> the job's timing keys, or the
# rejection: the timeout is held against the endpoint's interval, else the global one.
TIMINGS: list[tuple[Any, Any, str, dict[str, str] | str]] = [
    (None, None, "30s", {}),
    ("15s", None, "30s", {"scrape_interval": "15s"}),
    (None, "10s", "30s", {"scrape_timeout": "10s"}),
    (None, "1m", "30s", "scrapeTimeout '1m' is greater than the scrape interval '30s'"),
    ("15s", "15s", "30s", {"scrape_interval": "15s", "scrape_timeout": "15s"}),
    ("15s", "16s", "30s", "scrapeTimeout '16s' is greater than the scrape interval '15s'"),
    ("1m30s", "1m", "10s", {"scrape_interval": "1m30s", "scrape_timeout": "1m"}),
    ("2s", "1500ms", "10s", {"scrape_interval": "2s", "scrape_timeout": "1500ms"}),
    ("", "10s", "30s", "interval: not a valid duration: ''"),
    ("soon", "10s", "30s", "interval: not a valid duration: 'soon'"),
    ("15s", 10, "30s", "scrapeTimeout: not a valid duration: 10"),
]


@pytest.mark.parametrize(("interval", "timeout", "global_interval", "want"), TIMINGS)
def test_endpoint_timing(interval: Any, timeout: Any, global_interval: str, want: Any) -> None:
    fields = {k: v for k, v in (("interval", interval), ("scrapeTimeout", timeout)) if v is not None}
    out = _run(_sm(fields), scrapeInterval=global_interval)
    if isinstance(want, str):
        (rejected,) = out.rejected
        assert want in rejected.reason
        return
    (job,) = yaml.safe_load(out.config)["scrape_configs"]
    assert {k: job[k] for k in ("scrape_interval", "scrape_timeout") if k in job} == want
