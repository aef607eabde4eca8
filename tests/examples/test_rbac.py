"""examples/kubernetes/operator/rbac.yaml grants exactly the API calls config-operator makes.

The operator runs as the Deployment runs it (its args, two replicas, leader election on), as real
processes, against the fake API server (tests/fakekube), which records every call as (verb, apiGroup,
resource, subresource, namespace). The scenario covers what the operator does in a cluster: it lists and
watches everything, reads the Secret an additionalScrapeConfigs names and the Secret and ConfigMap a
monitor names, creates and then updates the generated Secrets (the config, the tls-assets shard),
creates, updates and deletes rule ConfigMaps, patches status, posts Events (one for a rejected monitor),
and campaigns for the Lease.
Then the recorded calls and the rules are compared both ways: every call is allowed, every rule is used.
Each replica sends its own bearer token (its kubeconfig's), so the fake server records who made each
call: every replica's calls are checked against the rules on their own, and only the Lease holder of
the moment wrote anything but the Lease.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.fakekube import FakeKube
from tests.support import procs
from tests.support.chaos import overlapping_writers
from tests.support.operator_run import secret_config
from tests.support.polling import eventually
from tests.support.rbac import OPERATOR, Call, Rule, compare, operator_manifests, operator_rules

BIN = Path(sys.executable).parent / "config-operator"
WAIT_S = 60.0  # generous: a shared 2-core machine

PCS = "prometheusconfigs.reloader.dev"
SMS = "servicemonitors.monitoring.coreos.com"
LEASES = "leases.coordination.k8s.io"


def test_compare_catches_a_missing_and_an_extra_grant() -> None:
    """The comparison below can fail, both ways."""
    rules = [
        Rule(None, frozenset({""}), frozenset({"secrets"}), frozenset({"get", "create"})),
        Rule("ops", frozenset({"coordination.k8s.io"}), frozenset({"leases"}), frozenset({"get"})),
    ]
    calls: set[Call] = {
        ("get", "", "secrets", "", "a"),
        ("update", "", "secrets", "", "a"),
        ("get", "coordination.k8s.io", "leases", "", "other"),
    }
    denied, unused = compare(rules, calls)
    assert denied == {
        ("update", "", "secrets", "", "a"),
        ("get", "coordination.k8s.io", "leases", "", "other"),
    }
    assert unused == {("create", "", "secrets"), ("get", "coordination.k8s.io", "leases")}


def test_rbac_has_no_wildcards() -> None:
    rules = operator_rules()
    assert rules, "no role is bound to the Deployment's ServiceAccount"
    for rule in rules:
        assert "*" not in rule.api_groups | rule.resources | rule.verbs, rule


def _load(name: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((OPERATOR / "samples" / name).read_text()) if d]
    (doc,) = docs
    return dict(doc)


async def _wait_healthy(ports: list[int], timeout_s: float, *, detail: Callable[[], str]) -> None:
    """Until each operator answers 200 on /healthz (it serves once its signal handlers are installed)."""

    async def healthy(http: aiohttp.ClientSession, port: int) -> bool:
        try:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    deadline = asyncio.get_running_loop().time() + timeout_s
    async with aiohttp.ClientSession() as http:
        waiting = list(ports)
        while waiting:
            waiting = [port for port in waiting if not await healthy(http, port)]
            if waiting and asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"no 200 on /healthz from ports {waiting} within {timeout_s}s\n{detail()}")
            await asyncio.sleep(0.05)


def _seed(kube: FakeKube, operator_namespace: str) -> None:
    """The samples, plus what makes the operator use every permission it needs."""
    for name in (operator_namespace, "monitoring"):
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    kube.create(_load("namespace.yaml"))
    pc = _load("prometheusconfig.yaml")
    pc["spec"]["additionalScrapeConfigs"] = {"name": "extra-scrape-configs", "key": "jobs.yaml"}
    kube.create(pc)
    jobs = "- job_name: extra\n  static_configs:\n    - targets: ['127.0.0.1:9']\n"
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "extra-scrape-configs", "namespace": "monitoring"},
            "data": {"jobs.yaml": base64.b64encode(jobs.encode()).decode()},
        }
    )
    # The monitor reads a CA from a ConfigMap and a password from a Secret: get configmaps and secrets.
    checkout = _load("servicemonitor.yaml")
    checkout["spec"]["endpoints"][0]["tlsConfig"] = {
        "ca": {"configMap": {"name": "checkout-ca", "key": "ca.crt"}}
    }
    checkout["spec"]["endpoints"][0]["basicAuth"] = {
        "username": {"name": "checkout-auth", "key": "user"},
        "password": {"name": "checkout-auth", "key": "password"},
    }
    kube.create(checkout)
    ns = checkout["metadata"]["namespace"]
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "checkout-ca", "namespace": ns},
            "data": {"ca.crt": "CA"},
        }
    )
    auth = {"user": base64.b64encode(b"scraper").decode(), "password": base64.b64encode(b"pw").decode()}
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "checkout-auth", "namespace": ns},
            "data": auth,
        }
    )
    kube.create(_load("podmonitor.yaml"))
    kube.create(_load("prometheusrule.yaml"))
    # A rule ConfigMap left over from when the rules needed two: the operator deletes it.
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "prometheus-main-rulefiles-1",
                "namespace": "monitoring",
                "labels": {
                    "app.kubernetes.io/managed-by": "config-operator",
                    "reloader.dev/prometheusconfig": "main",
                },
            },
            "data": {"old.yaml": "groups: []\n"},
        }
    )
    # Rejected as prometheus-operator would: its scrapeTimeout is longer than its interval.
    bad = copy.deepcopy(_load("servicemonitor.yaml"))
    bad["metadata"]["name"] = "too-slow"
    bad["spec"]["endpoints"][0].update(interval="10s", scrapeTimeout="30s")
    kube.create(bad)


def _kubelet_args(container: dict[str, Any], env: dict[str, str]) -> list[str]:
    """The container's args with $(VAR) expanded from its env, as the kubelet does."""
    return [re.sub(r"\$\(([A-Za-z0-9_]+)\)", lambda mt: env.get(mt[1], mt[0]), a) for a in container["args"]]


def _kubeconfig_with_token(kube: FakeKube, tmp_path: Path, token: str) -> Path:
    """A kubeconfig of the fake server whose user is ``token``: the server records it as the caller."""
    doc = yaml.safe_load(kube.kubeconfig(namespace="default"))
    doc["users"][0]["user"] = {"token": token}
    path = tmp_path / f"kubeconfig-{token}"
    path.write_text(yaml.safe_dump(doc))
    return path


def _config(kube: FakeKube) -> str:
    return (secret_config(kube, "monitoring", "prometheus-main") or b"").decode()


@pytest.mark.timeout(240)
async def test_rbac_covers_exactly_the_calls_the_operator_makes(tmp_path: Path) -> None:
    _, deployment = operator_manifests()
    namespace = deployment["metadata"]["namespace"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    replicas = deployment["spec"]["replicas"]

    async with FakeKube.running(bookmark_interval_s=0.5) as kube:
        _seed(kube, namespace)
        running: list[tuple[asyncio.subprocess.Process, Path]] = []
        ports: list[int] = []
        try:
            for i in range(replicas):
                pod_env = {"POD_NAME": f"config-operator-{i}", "POD_NAMESPACE": namespace}
                kubeconfig = _kubeconfig_with_token(kube, tmp_path, pod_env["POD_NAME"])
                port = procs.free_port()
                args = [
                    a if not a.startswith("--listen-address=") else f"--listen-address=127.0.0.1:{port}"
                    for a in _kubelet_args(container, pod_env)
                ]
                log_path = tmp_path / f"operator-{i}.log"
                with log_path.open("wb") as logf:
                    proc = await asyncio.create_subprocess_exec(
                        BIN, *args, f"--kubeconfig={kubeconfig}",
                        env={**os.environ, **pod_env}, stdout=logf, stderr=asyncio.subprocess.STDOUT,
                    )  # fmt: skip
                running.append((proc, log_path))
                ports.append(port)

            def logs() -> str:
                return "\n".join(p.read_text(errors="replace")[-3000:] for _, p in running)

            # Every replica must be up before the scenario ends: the leader can be through it before the
            # other has imported its modules, and a SIGTERM then kills it before its handler is in place.
            await _wait_healthy(ports, WAIT_S, detail=logs)

            def converged() -> bool:
                for proc, _ in running:
                    assert proc.returncode is None, logs()
                text = _config(kube)
                return "serviceMonitor/shop/checkout/0" in text and "job_name: extra" in text

            await eventually(
                converged, "the operator to write monitoring/prometheus-main", WAIT_S, detail=logs
            )
            assert "too-slow" not in _config(kube)

            def rejected_event() -> bool:
                events = kube.list("events", "monitoring") + kube.list("events", "shop")
                return any("too-slow" in (e.get("message") or "") for e in events)

            await eventually(
                rejected_event, "a Warning Event naming the rejected monitor", WAIT_S, detail=logs
            )

            def reconciled() -> bool:
                status = kube.get(PCS, "monitoring", "main").get("status") or {}
                return any(c.get("type") == "Reconciled" for c in status.get("conditions", []))

            await eventually(reconciled, "the Reconciled condition", WAIT_S, detail=logs)

            def rule_configmaps() -> list[str]:
                return [cm["metadata"]["name"] for cm in kube.list("configmaps", "monitoring")]

            await eventually(
                lambda: rule_configmaps() == ["prometheus-main-rulefiles-0"],
                "the rule ConfigMap written and the stale one deleted",
                WAIT_S,
                detail=logs,
            )
            # A rule change: the rule ConfigMap is updated.
            rule = kube.get("prometheusrules.monitoring.coreos.com", "monitoring", "checkout-rules")
            rule["spec"]["groups"][0]["rules"][0]["expr"] = "vector(1)"
            kube.update(rule)
            await eventually(
                lambda: (
                    "vector(1)"
                    in str(kube.get("configmaps", "monitoring", "prometheus-main-rulefiles-0")["data"])
                ),
                "the rule ConfigMap to follow the PrometheusRule",
                WAIT_S,
                detail=logs,
            )

            # An update: the Secret is rewritten (update), a namespace relabelled.
            sm = kube.get(SMS, "shop", "checkout")
            sm["spec"]["endpoints"][0]["path"] = "/internal/metrics"
            kube.update(sm)
            await eventually(
                lambda: "/internal/metrics" in _config(kube),
                "the Secret to follow the change",
                WAIT_S,
                detail=logs,
            )
            shop = kube.get("namespaces", "", "shop")
            shop["metadata"]["labels"]["monitoring"] = "disabled"
            kube.update(shop)
            await eventually(
                lambda: "serviceMonitor/shop/" not in _config(kube),
                "the monitors of a deselected namespace to go",
                WAIT_S,
                detail=logs,
            )
            # Both replicas ran for a while: the leader renewed the Lease, the other one read it.
            await eventually(
                lambda: ("update", "coordination.k8s.io", "leases", "", namespace) in set(kube.calls),
                "the leader to renew its Lease",
                WAIT_S,
                detail=logs,
            )
            leases = kube.list(LEASES, namespace)
            assert [lease["metadata"]["name"] for lease in leases] == ["config-operator"]
        finally:
            for proc, _ in running:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
            codes: list[int] = []
            for proc, _ in running:
                try:
                    codes.append(await asyncio.wait_for(proc.wait(), WAIT_S))
                except TimeoutError:  # never leave an operator running; the code then fails the test
                    proc.kill()
                    codes.append(await proc.wait())
        assert codes == [0] * replicas, logs()
        calls: set[Call] = {tuple(c) for c in kube.calls}  # type: ignore[misc]
        identities = [f"config-operator-{i}" for i in range(replicas)]
        by_replica = {name: {tuple(c) for c in kube.calls_by(name)} for name in identities}
        writes = kube.writes

    # Every call came from a replica, under its own name, and each of them made some.
    assert set(kube.identities) == set(identities)
    assert all(by_replica.values())
    rules = operator_rules()
    for name, own in by_replica.items():
        denied, _ = compare(rules, own)  # type: ignore[arg-type]
        assert denied == set(), f"{name}: calls the RBAC in rbac.yaml would deny: {sorted(denied)}"
    assert overlapping_writers(writes, set(identities)) == []
    writers = {w.identity for w in writes if w.resource == "secrets"}
    assert len(writers) == 1, f"one leader wrote the Secret, not {writers}"
    denied, unused = compare(rules, calls)
    assert denied == set(), f"calls the RBAC in rbac.yaml would deny: {sorted(denied)}"
    assert unused == set(), f"grants in rbac.yaml the operator never used: {sorted(unused)}"
