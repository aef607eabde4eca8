"""Secret- and ConfigMap-backed monitor values against the fake API server: the credential lands in the
config, a change to it updates the config Secret, its deletion rejects the monitor with an Event, TLS
material lands in the tls-assets Secret, and unrelated Secrets are never cached."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import yaml

from config_operator.app import Operator
from config_operator.client import CONFIGMAPS, SECRETS
from config_operator.references import Unkept
from tests.config_operator.conftest import PCS, SMS, events, prometheus_config, service_monitor
from tests.fakekube import FakeKube
from tests.support.operator_run import secret_config
from tests.support.polling import eventually

SM_CRD = (
    Path(__file__).resolve().parents[2] / "examples" / "kubernetes" / "operator" / "crd-servicemonitors.yaml"
)


def _secret(name: str, **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "default"},
        "data": encoded,
    }


def _monitor() -> dict[str, Any]:
    sm = service_monitor("app")
    sm["spec"]["endpoints"][0] |= {
        "scheme": "https",
        "basicAuth": {
            "username": {"name": "auth", "key": "user"},
            "password": {"name": "auth", "key": "password"},
        },
        "tlsConfig": {"ca": {"configMap": {"name": "ca", "key": "ca.crt"}}, "serverName": "app"},
    }
    return sm


def _job(kube: FakeKube) -> dict[str, Any] | None:
    config = secret_config(kube, "default", "prometheus-main")
    if config is None:
        return None
    jobs = yaml.safe_load(config)["scrape_configs"]
    return jobs[0] if jobs else None


def _tls_assets(kube: FakeKube) -> dict[str, str]:
    secret = kube.find("secrets", "default", "prometheus-main-tls-assets-0") or {}
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


async def test_credentials_and_tls_material_follow_their_secret_and_configmap(
    kube: FakeKube, operator: Operator
) -> None:
    kube.create(_secret("auth", user="scraper", password="first"))
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "ca", "namespace": "default"},
            "data": {"ca.crt": "CA-1"},
        }
    )
    kube.create(_monitor())
    kube.create(prometheus_config("main"))

    job = await eventually(lambda: _job(kube), what="the job in the config Secret")
    assert job["basic_auth"] == {"username": "scraper", "password": "first"}
    assert job["tls_config"] == {"ca_file": "/etc/prometheus/certs/1_default_ca_ca.crt", "server_name": "app"}
    await eventually(
        lambda: _tls_assets(kube) == {"1_default_ca_ca.crt": "CA-1"}, what="the CA in tls-assets-0"
    )
    owner = kube.get("secrets", "default", "prometheus-main-tls-assets-0")["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "PrometheusConfig" and owner["name"] == "main"

    # A change to the referenced Secret reaches the config (the operator watches it).
    started = time.monotonic()
    kube.update(_secret("auth", user="scraper", password="second"))
    await eventually(
        lambda: (j := _job(kube)) is not None and j.get("basic_auth", {}).get("password") == "second",
        what="the new password in the config",
    )
    print(f"secret change to config Secret update: {time.monotonic() - started:.3f}s")
    ca = kube.get("configmaps", "default", "ca")
    ca["data"]["ca.crt"] = "CA-2"
    kube.update(ca)
    await eventually(
        lambda: _tls_assets(kube) == {"1_default_ca_ca.crt": "CA-2"}, what="the new CA in tls-assets-0"
    )

    # Deleting it rejects the monitor with a Warning naming the Secret and the key; nothing else is lost.
    kube.delete("secrets", "default", "auth")

    def rejected() -> bool:
        return any(
            "ServiceMonitor default/app" in e["message"]
            and "Secret default/auth not found (wanted key 'user')" in e["message"]
            for e in events(kube, type_="Warning")
        )

    await eventually(rejected, what="a Warning Event naming the Secret and the key")
    await eventually(lambda: _job(kube) is None, what="the job to leave the config")
    for e in events(kube):
        assert "second" not in e["message"] and "scraper" not in e["message"]  # never a credential
    await eventually(
        lambda: (kube.get(PCS, "default", "main").get("status") or {}).get("rejectedMonitors") == 1,
        what="the status to count the rejected monitor",
    )


async def test_an_invalid_config_waits_for_its_secret(kube: FakeKube, operator: Operator) -> None:
    kube.create(prometheus_config("main", additionalScrapeConfigs={"name": "extra", "key": "jobs.yaml"}))
    await eventually(
        lambda: any("extra" in e["message"] for e in events(kube, type_="Warning")),
        what="the InvalidConfig Event",
    )
    kube.create(
        _secret(
            "extra", **{"jobs.yaml": "- job_name: extra\n  static_configs: [{targets: ['127.0.0.1:9']}]\n"}
        )
    )
    await eventually(
        lambda: b"job_name: extra" in (secret_config(kube, "default", "prometheus-main") or b""),
        what="the config once the Secret exists",
    )


async def test_unrelated_secrets_are_not_cached(kube: FakeKube, operator: Operator) -> None:
    for i in range(50):
        kube.create(_secret(f"unrelated-{i}", blob="x" * 1000))
    kube.create(_secret("auth", user="u", password="p"))
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "ca", "namespace": "default"},
            "data": {"ca.crt": "CA"},
        }
    )
    kube.create(_monitor())
    kube.create(prometheus_config("main"))
    await eventually(lambda: _job(kube), what="the job")
    # (The rule ConfigMaps' informer caches only the operator's own, by label: issue 9's.)
    secret_informers = [i for i in operator.informers if i.resource in (SECRETS, CONFIGMAPS)]
    assert secret_informers and all(
        isinstance(i.store, Unkept) and len(i.store) == 0 for i in secret_informers
    )
    assert {
        (r.kind, r.name)
        for r in operator.reconciler.references.of(next(iter(operator.caches.prometheus_configs.keys())))
    } == {
        ("Secret", "auth"),
        ("ConfigMap", "ca"),
    }
    # Its lists ask for one item: what it reads grows with what it references, not with the cluster.
    lists = [c for c in kube.calls if c.verb == "list" and c.resource == "secrets"]
    assert lists
    kube.clear_calls()
    sm = kube.get(SMS, "default", "app")
    kube.update({**sm, "metadata": {**sm["metadata"], "labels": {"touched": "yes"}}})
    await eventually(
        lambda: any(c.verb == "get" and c.resource == "secrets" for c in kube.calls), what="a reconcile"
    )


async def test_a_field_the_operator_does_not_support_survives_the_crd_and_is_rejected_by_name(
    kube: FakeKube, operator: Operator
) -> None:
    kube.install_crd(yaml.safe_load(SM_CRD.read_text()))
    sm = service_monitor("app")
    sm["spec"]["endpoints"][0]["sigv4"] = {"region": "eu-west-1"}
    stored = kube.create(sm)
    assert stored["spec"]["endpoints"][0]["sigv4"] == {"region": "eu-west-1"}  # not pruned
    kube.create(prometheus_config("main"))
    await eventually(
        lambda: any(
            "ServiceMonitor default/app" in e["message"] and "unsupported field(s): sigv4" in e["message"]
            for e in events(kube, type_="Warning")
        ),
        what="a Warning Event naming the unsupported field",
    )
