"""The operator's runtime against the fake API server: fixtures, object builders, a poll helper.

Everything is real except the API server: kubernetes_asyncio talks HTTP to tests.fakekube in-process.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest

from config_operator.app import Operator, Settings
from config_operator.client import Kube
from config_operator.informer import InformerSettings
from config_operator.metrics import OperatorMetrics
from config_operator.queue import Backoff
from tests.fakekube import FakeKube

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


async def eventually(predicate: Callable[[], Any], timeout_s: float = 30.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it gives something truthy; fail naming ``what`` after ``timeout_s``.

    The machine is shared, so timeouts are generous; nothing here measures time.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last: Any = None
    while loop.time() < deadline:
        last = predicate()
        if last:
            return last
        await asyncio.sleep(0.02)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}; last value: {last!r}")


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


def secret_config(kube: FakeKube, ns: str, name: str) -> bytes | None:
    """The uncompressed prometheus.yaml in the operator's Secret, or None when there is none yet."""
    secret = kube.find("secrets", ns, name)
    if secret is None:
        return None
    try:
        return gzip.decompress(base64.b64decode(secret["data"]["prometheus.yaml.gz"]))
    except gzip.BadGzipFile:
        return None  # not (or no longer) the operator's


def events(kube: FakeKube, ns: str = "default", *, type_: str | None = None) -> list[dict[str, Any]]:
    """The Events in ``ns`` (of one type when given)."""
    return [e for e in kube.list("events", ns) if type_ is None or e.get("type") == type_]


def condition(kube: FakeKube, ns: str, name: str) -> dict[str, Any] | None:
    """The Reconciled condition of a PrometheusConfig, or None."""
    status = kube.get(PCS, ns, name).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c.get("type") == "Reconciled"), None)


@pytest.fixture
async def kube() -> AsyncIterator[FakeKube]:
    """A fresh fake API server with the default namespace, bookmarks every 0.2 s."""
    async with FakeKube.running(bookmark_interval_s=0.2) as server:
        server.create(namespace("default"))
        yield server


OperatorFactory = Callable[..., contextlib.AbstractAsyncContextManager[Operator]]


@pytest.fixture
def operator_factory(kube: FakeKube) -> OperatorFactory:
    """``async with operator_factory(**settings) as op``: an Operator running against ``kube``."""

    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Operator]:
        settings = replace(FAST, **overrides)
        async with Kube.connect(host=kube.url, user_agent=f"test/{settings.identity}") as client:
            operator = Operator(client, settings, OperatorMetrics.create(process_metrics=False))
            async with asyncio.TaskGroup() as tg:
                task = tg.create_task(operator.run())
                try:
                    yield operator
                finally:
                    task.cancel()

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
