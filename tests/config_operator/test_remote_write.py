"""spec.remoteWrite: what is written, what is refused (anything Prometheus 2.42 would refuse, or a
missing credential), and that a credential never shows in a message."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from config_operator.generate import InvalidConfig, Reference, generate
from config_operator.generate.remote_write import FIELDS, QUEUE_FIELDS
from config_operator.generate.spec import SPEC_FIELDS

PASSWORD = "hunter2-very-secret"
SECRETS = [
    {
        "kind": "Secret",
        "metadata": {"name": "auth", "namespace": "monitoring"},
        "data": {
            "user": base64.b64encode(b"prom").decode(),
            "password": base64.b64encode(PASSWORD.encode()).decode(),
            "broken": "%%%",
        },
    }
]
CONFIGMAPS = [
    {
        "kind": "ConfigMap",
        "metadata": {"name": "oauth", "namespace": "monitoring"},
        "data": {"id": "cm-client"},
    }
]
BASIC = {"username": {"name": "auth", "key": "user"}, "password": {"name": "auth", "key": "password"}}


def _pc(*remote_write: Any, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "PrometheusConfig",
        "metadata": {"name": "main", "namespace": "monitoring"},
        "spec": {"remoteWrite": list(remote_write), **spec},
    }


def _rw(*remote_write: Any, **spec: Any) -> list[dict[str, Any]]:
    generated = generate(_pc(*remote_write, **spec), [], [], [], SECRETS, configmaps=CONFIGMAPS)
    return list(yaml.safe_load(generated.config).get("remote_write", []))


def test_remote_write_is_a_spec_field() -> None:
    assert "remoteWrite" in SPEC_FIELDS
    assert {"url", "basicAuth", "tlsConfig", "queueConfig", "metadataConfig"} <= FIELDS


def test_no_remote_write_section_without_entries() -> None:
    assert "remote_write" not in yaml.safe_load(generate(_pc(), [], [], [], []).config)


def test_the_section_comes_last() -> None:
    pc = _pc({"url": "http://a/w"}, alerting={"alertmanagers": [{"static": ["am:9093"]}]})
    config = yaml.safe_load(generate(pc, [], [], [], []).config)
    assert list(config)[-2:] == ["alerting", "remote_write"]


def test_basic_auth_is_written_inline_and_its_secret_is_a_reference() -> None:
    generated = generate(_pc({"url": "http://a/w", "basicAuth": BASIC}), [], [], [], SECRETS)
    (rw,) = yaml.safe_load(generated.config)["remote_write"]
    assert rw["basic_auth"] == {"username": "prom", "password": PASSWORD}
    assert Reference("Secret", "monitoring", "auth") in generated.references


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"url": "http://a/w"}, {"url": "http://a/w"}),
        ({"url": "http://a/w", "remoteTimeout": "5s"}, {"url": "http://a/w", "remote_timeout": "5s"}),
        (
            {"url": "http://a/w", "authorization": {"credentials": {"name": "auth", "key": "password"}}},
            {"url": "http://a/w", "authorization": {"type": "Bearer", "credentials": PASSWORD}},
        ),
        (
            {"url": "http://a/w", "authorization": {"type": "Token ", "credentialsFile": "/t"}},
            {"url": "http://a/w", "authorization": {"type": "Token", "credentials_file": "/t"}},
        ),
        (
            {
                "url": "http://a/w",
                "oauth2": {
                    "clientId": {"configMap": {"name": "oauth", "key": "id"}},
                    "clientSecret": {"name": "auth", "key": "password"},
                    "tokenUrl": "http://idp/token",
                },
            },
            {
                "url": "http://a/w",
                "oauth2": {
                    "client_id": "cm-client",
                    "client_secret": PASSWORD,
                    "token_url": "http://idp/token",
                },
            },
        ),
        (
            {"url": "http://a/w", "tlsConfig": {"insecureSkipVerify": True, "maxVersion": "TLS13"}},
            {"url": "http://a/w", "tls_config": {"insecure_skip_verify": True, "max_version": "TLS13"}},
        ),
        (
            {"url": "http://a/w", "metadataConfig": {"send": False}},
            {"url": "http://a/w", "metadata_config": {"send": False}},
        ),
        (
            {
                "url": "http://a/w",
                "basicAuth": {**BASIC, "username": {"name": "auth", "key": "none", "optional": True}},
            },
            {"url": "http://a/w", "basic_auth": {"username": "", "password": PASSWORD}},
        ),
    ],
)
def test_entries(entry: dict[str, Any], expected: dict[str, Any]) -> None:
    (rw,) = _rw(entry)
    assert rw == expected
    assert list(rw) == list(expected)


@pytest.mark.parametrize(
    ("version", "field", "key", "value", "minimum"),
    [
        ("2.14.0", "name", "name", "x", "2.15.0"),
        ("2.14.0", "headers", "headers", {"X-A": "b"}, "2.15.0"),
        ("2.26.0", "sendExemplars", "send_exemplars", True, "2.27.0"),
        ("2.22.0", "metadataConfig", "metadata_config", {"send": True}, "2.23.0"),
        ("2.25.0", "authorization", "authorization", {"credentialsFile": "/t"}, "2.26.0"),
    ],
)
def test_fields_are_version_gated(version: str, field: str, key: str, value: Any, minimum: str) -> None:
    pc = _pc({"url": "http://a/w", field: value}, version=version)
    generated = generate(pc, [], [], [], SECRETS)
    (rw,) = yaml.safe_load(generated.config)["remote_write"]
    assert key not in rw
    assert (
        f"spec.remoteWrite[0].{field} left out: Prometheus {version} does not support it (needs {minimum})"
        in generated.warnings
    )
    (rw,) = _rw({"url": "http://a/w", field: value}, version=minimum)
    assert key in rw


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"name": "x"}], r"spec\.remoteWrite\[0\]\.url is required"),
        (
            [{"url": "ftp://user:hunter2-very-secret@metrics.example.com/push"}],
            r"url: is not an http or https URL",
        ),
        ([{"url": "http://a/w", "sigv4": {}}], r"unsupported field\(s\): sigv4"),
        (
            [{"url": "http://a/w", "basicAuth": BASIC, "authorization": {"credentialsFile": "/t"}}],
            "basicAuth and authorization can't be set at the same time",
        ),
        (
            [{"url": "http://a/w", "basicAuth": BASIC, "bearerTokenFile": "/t"}],
            "bearerTokenFile can't be set together with basicAuth",
        ),
        (
            [{"url": "http://a/w", "authorization": {"type": "Basic", "credentialsFile": "/t"}}],
            "cannot be Basic",
        ),
        (
            [
                {
                    "url": "http://a/w",
                    "authorization": {
                        "credentials": {"name": "auth", "key": "password"},
                        "credentialsFile": "/t",
                    },
                }
            ],
            "can't be set at the same time",
        ),
        (
            [{"url": "http://a/w", "headers": {"authorization": "x"}}],
            "'authorization' is a header Prometheus sets itself",
        ),
        ([{"url": "http://a/w", "remoteTimeout": "soon"}], r"remoteTimeout: not a valid duration"),
        (
            [{"url": "http://a/w", "writeRelabelConfigs": [{"action": "explode"}]}],
            r"writeRelabelConfigs\[0\]: unknown relabel action",
        ),
        (
            [{"url": "http://a/w", "queueConfig": {"maxShards": -1}}],
            r"queueConfig\.maxShards: must be a non-negative integer",
        ),
        (
            [{"url": "http://a/w", "queueConfig": {"shards": 1}}],
            r"queueConfig: unsupported field\(s\): shards",
        ),
        ([{"url": "http://a/w", "tlsConfig": {"certFile": "/c"}}], "certFile and keyFile go together"),
        (
            [{"url": "http://a/w", "tlsConfig": {"minVersion": "SSL3"}}],
            r"tlsConfig\.minVersion: must be one of",
        ),
        (
            [{"url": "http://a/w", "tlsConfig": {"ca": {"secret": {"name": "ca", "key": "ca.crt"}}}}],
            r"tlsConfig\.ca: TLS material from Secrets",
        ),
        (
            [
                {
                    "url": "http://a/w",
                    "oauth2": {"clientSecret": {"name": "auth", "key": "password"}, "tokenUrl": "http://t"},
                }
            ],
            r"oauth2\.clientId: is required",
        ),
        (
            [{"url": "http://a/w", "name": "x"}, {"url": "http://b/w", "name": "x"}],
            "the name 'x' is used twice",
        ),
        # Credentials that are not there: the Secret and key are named.
        (
            [{"url": "http://a/w", "basicAuth": {**BASIC, "password": {"name": "auth", "key": "nope"}}}],
            r"basicAuth\.password: Secret monitoring/auth has no key 'nope'",
        ),
        (
            [{"url": "http://a/w", "basicAuth": {**BASIC, "password": {"name": "gone", "key": "p"}}}],
            r"basicAuth\.password: Secret monitoring/gone not found",
        ),
        (
            [{"url": "http://a/w", "basicAuth": {**BASIC, "password": {"name": "auth", "key": "broken"}}}],
            "is not base64-encoded UTF-8",
        ),
        (
            [{"url": "http://a/w", "basicAuth": {**BASIC, "password": {"name": "auth"}}}],
            r"basicAuth\.password: needs the name and key",
        ),
    ],
)
def test_refused(entries: list[Any], message: str) -> None:
    with pytest.raises(InvalidConfig, match=message) as info:
        generate(_pc(*entries), [], [], [], SECRETS, configmaps=CONFIGMAPS)
    assert PASSWORD not in str(info.value)
    assert "\n" not in str(info.value)


def test_a_secret_of_another_namespace_is_not_used() -> None:
    elsewhere = [{**SECRETS[0], "metadata": {"name": "auth", "namespace": "other"}}]
    with pytest.raises(InvalidConfig, match="Secret monitoring/auth not found"):
        generate(_pc({"url": "http://a/w", "basicAuth": BASIC}), [], [], [], elsewhere)


def test_the_crd_admits_exactly_the_supported_fields() -> None:
    crd = (
        Path(__file__).resolve().parents[2]
        / "examples"
        / "kubernetes"
        / "operator"
        / "crd-prometheusconfigs.yaml"
    )
    (version,) = yaml.safe_load(crd.read_text())["spec"]["versions"]
    items = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["remoteWrite"]["items"]
    assert set(items["properties"]) == FIELDS
    assert set(items["properties"]["queueConfig"]["properties"]) == QUEUE_FIELDS
    # Unknown TLS fields reach the operator (which refuses Secret-backed ones by name) instead of being pruned.
    assert items["properties"]["tlsConfig"]["x-kubernetes-preserve-unknown-fields"] is True
