"""The operator's runtime against the fake API server: fixtures and object builders.

Everything is real except the API server: kubernetes_asyncio talks HTTP to tests.fakekube in-process.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest

from config_operator.app import Operator, Settings
from config_operator.informer import InformerSettings
from config_operator.queue import Backoff
from tests.fakekube import FakeKube
from tests.support.operator_run import running_operator
from tests.support.polling import eventually
from tests.support.rbac import denied_anywhere

PCS = "prometheusconfigs.reloader.dev"
SMS = "servicemonitors.monitoring.coreos.com"
PMS = "podmonitors.monitoring.coreos.com"

# Fast retries so that fault tests finish quickly; the logic is the same as with the defaults.
FAST = Settings(
    workers=2,
    resync_interval_s=0,
    identity="test-operator",
    informer=InformerSettings(watch_timeout_s=60, inactivity_timeout_s=60.0, backoff=Backoff(0.05, 0.5)),
    backoff=Backoff(0.05, 0.5),
)


def namespace(name: str, **labels: str) -> dict[str, Any]:
    """A Namespace object."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def prometheus_config(name: str, ns: str = "default", **spec: Any) -> dict[str, Any]:
    """A PrometheusConfig selecting every ServiceMonitor in its namespace unless ``spec`` says otherwise."""
    body: dict[str, Any] = {"serviceMonitorSelector": {}, "externalLabels": {"replica": "$(POD_NAME)"}}
    body.update(spec)
    return {
        "apiVersion": "reloader.dev/v1alpha1",
        "kind": "PrometheusConfig",
        "metadata": {"name": name, "namespace": ns},
        "spec": body,
    }


def service_monitor(name: str, ns: str = "default", port: str = "web", **labels: str) -> dict[str, Any]:
    """A ServiceMonitor scraping ``port`` of the Services labelled app=<name>."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"selector": {"matchLabels": {"app": name}}, "endpoints": [{"port": port}]},
    }


def events(kube: FakeKube, ns: str = "default", *, type_: str | None = None) -> list[dict[str, Any]]:
    """The Events in ``ns`` (of one type when given)."""
    return [e for e in kube.list("events", ns) if type_ is None or e.get("type") == type_]


def condition(kube: FakeKube, ns: str, name: str) -> dict[str, Any] | None:
    """The Reconciled condition of a PrometheusConfig, or None."""
    status = kube.get(PCS, ns, name).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c.get("type") == "Reconciled"), None)


@pytest.fixture
async def kube() -> AsyncIterator[FakeKube]:
    """A fresh fake API server with the default namespace, bookmarks every 0.2 s.

    Only the operator talks to it over HTTP, so afterwards every call it saw must be one that the
    example RBAC allows: the operator's whole test suite, not only test_rbac.py's run, backs rbac.yaml.
    """
    async with FakeKube.running(bookmark_interval_s=0.2) as server:
        server.create(namespace("default"))
        yield server
    denied = denied_anywhere(server.calls)
    assert not denied, f"calls examples/kubernetes/operator/rbac.yaml does not allow: {sorted(denied)}"


OperatorFactory = Callable[..., contextlib.AbstractAsyncContextManager[Operator]]


@pytest.fixture
def operator_factory(kube: FakeKube) -> OperatorFactory:
    """``async with operator_factory(**settings) as op``: an Operator running against ``kube``."""

    def start(**overrides: Any) -> contextlib.AbstractAsyncContextManager[Operator]:
        return running_operator(kube, replace(FAST, **overrides))

    return start


@pytest.fixture
async def operator(operator_factory: OperatorFactory) -> AsyncIterator[Operator]:
    """One Operator (no leader election), caches synced."""
    async with operator_factory() as op:
        await eventually(op.ready, what="informers synced")
        yield op


def metric(op: Operator, name: str, labels: dict[str, str] | None = None) -> float:
    """A sample of the operator's own registry (0 when absent)."""
    value = op.metrics.registry.get_sample_value(name, labels or {})
    return value or 0.0
