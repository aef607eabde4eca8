"""examples/kubernetes/operator/rbac.yaml grants exactly the API calls config-operator makes.

The operator runs as the Deployment runs it (its args, two replicas, leader election on), as real
processes, against the fake API server (tests/fakekube), which records every call as (verb, apiGroup,
resource, subresource, namespace). The scenario covers what the operator does in a cluster: it lists and
watches everything, reads the Secret an additionalScrapeConfigs names, creates and then updates the
generated Secret, patches status, posts Events (one for a rejected monitor), and campaigns for the Lease.
Then the recorded calls and the rules are compared both ways: every call is allowed, every rule is used.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import gzip
import os
import re
import signal
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.examples import manifests as m
from tests.fakekube import FakeKube
from tests.support import procs

OPERATOR = m.EXAMPLES / "kubernetes" / "operator"
BIN = Path(sys.executable).parent / "config-operator"
WAIT_S = 60.0  # generous: a shared 2-core machine

PCS = "prometheusconfigs.reloader.dev"
SMS = "servicemonitors.monitoring.coreos.com"
LEASES = "leases.coordination.k8s.io"

Call = tuple[str, str, str, str, str]  # verb, apiGroup, resource, subresource, namespace


@dataclass(frozen=True)
class Rule:
    """One RBAC rule; namespace None for a ClusterRole (bound cluster-wide), else the Role's namespace."""

    namespace: str | None
    api_groups: frozenset[str]
    resources: frozenset[str]
    verbs: frozenset[str]

    def allows(self, call: Call) -> bool:
        verb, group, resource, subresource, namespace = call
        full = f"{resource}/{subresource}" if subresource else resource
        in_scope = self.namespace is None or self.namespace == namespace
        return in_scope and group in self.api_groups and full in self.resources and verb in self.verbs

    def grants(self) -> Iterable[tuple[str, str, str]]:
        """Every (verb, apiGroup, resource[/subresource]) this rule grants."""
        for group in self.api_groups:
            for resource in self.resources:
                for verb in self.verbs:
                    yield verb, group, resource


def rules_of(documents: list[dict[str, Any]], service_account: tuple[str, str]) -> list[Rule]:
    """The rules bound to ``service_account`` (namespace, name) by the ClusterRoleBindings and RoleBindings."""
    roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in documents}
    rules: list[Rule] = []
    for binding in (d for d in documents if d["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        subjects = {(s["kind"], s.get("namespace"), s["name"]) for s in binding["subjects"]}
        if ("ServiceAccount", *service_account) not in subjects:
            continue
        ref = binding["roleRef"]
        scope = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        role_ns = scope if ref["kind"] == "Role" else None
        role = roles[(ref["kind"], role_ns, ref["name"])]
        for rule in role["rules"]:
            rules.append(
                Rule(
                    scope,
                    frozenset(rule["apiGroups"]),
                    frozenset(rule["resources"]),
                    frozenset(rule["verbs"]),
                )
            )
    return rules


def compare(rules: list[Rule], calls: set[Call]) -> tuple[set[Call], set[tuple[str, str, str]]]:
    """(calls no rule allows, grants no call used)."""
    denied = {c for c in calls if not any(r.allows(c) for r in rules)}
    unused: set[tuple[str, str, str]] = set()
    for rule in rules:
        for verb, group, resource in rule.grants():
            name, _, sub = resource.partition("/")
            used = any(
                c[0] == verb and c[1] == group and c[2] == name and c[3] == sub and rule.allows(c)
                for c in calls
            )
            if not used:
                unused.add((verb, group, resource))
    return denied, unused


def _rbac() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    documents = [d.body for d in m.manifests() if d.path.parent == OPERATOR]
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    return documents, deployment


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
    documents, deployment = _rbac()
    sa = (deployment["metadata"]["namespace"], deployment["spec"]["template"]["spec"]["serviceAccountName"])
    rules = rules_of(documents, sa)
    assert rules, "no role is bound to the Deployment's ServiceAccount"
    for rule in rules:
        assert "*" not in rule.api_groups | rule.resources | rule.verbs, rule


def _load(name: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((OPERATOR / "samples" / name).read_text()) if d]
    (doc,) = docs
    return dict(doc)


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
    kube.create(_load("servicemonitor.yaml"))
    kube.create(_load("podmonitor.yaml"))
    # Rejected as prometheus-operator would: its scrapeTimeout is longer than its interval.
    bad = copy.deepcopy(_load("servicemonitor.yaml"))
    bad["metadata"]["name"] = "too-slow"
    bad["spec"]["endpoints"][0].update(interval="10s", scrapeTimeout="30s")
    kube.create(bad)


def _kubelet_args(container: dict[str, Any], env: dict[str, str]) -> list[str]:
    """The container's args with $(VAR) expanded from its env, as the kubelet does."""
    return [re.sub(r"\$\(([A-Za-z0-9_]+)\)", lambda mt: env.get(mt[1], mt[0]), a) for a in container["args"]]


async def _eventually(predicate: Callable[[], Any], what: str, detail: Callable[[], str] = str) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    last: Any = None
    while loop.time() < deadline:
        last = predicate()
        if last:
            return last
        await asyncio.sleep(0.1)
    pytest.fail(f"timed out after {WAIT_S}s waiting for {what}; last value: {last!r}\n{detail()}")


def _config(kube: FakeKube) -> str:
    secret = kube.find("secrets", "monitoring", "prometheus-main")
    if secret is None:
        return ""
    return gzip.decompress(base64.b64decode(secret["data"]["prometheus.yaml.gz"])).decode()


@pytest.mark.timeout(240)
async def test_rbac_covers_exactly_the_calls_the_operator_makes(tmp_path: Path) -> None:
    documents, deployment = _rbac()
    namespace = deployment["metadata"]["namespace"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    replicas = deployment["spec"]["replicas"]

    async with FakeKube.running(bookmark_interval_s=0.5) as kube:
        _seed(kube, namespace)
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        running: list[tuple[asyncio.subprocess.Process, Path]] = []
        try:
            for i in range(replicas):
                pod_env = {"POD_NAME": f"config-operator-{i}", "POD_NAMESPACE": namespace}
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

            def logs() -> str:
                return "\n".join(p.read_text(errors="replace")[-3000:] for _, p in running)

            def converged() -> bool:
                for proc, _ in running:
                    assert proc.returncode is None, logs()
                text = _config(kube)
                return "serviceMonitor/shop/checkout/0" in text and "job_name: extra" in text

            await _eventually(converged, "the operator to write monitoring/prometheus-main", logs)
            assert "too-slow" not in _config(kube)

            def rejected_event() -> bool:
                events = kube.list("events", "monitoring") + kube.list("events", "shop")
                return any("too-slow" in (e.get("message") or "") for e in events)

            await _eventually(rejected_event, "a Warning Event naming the rejected monitor")

            def reconciled() -> bool:
                status = kube.get(PCS, "monitoring", "main").get("status") or {}
                return any(c.get("type") == "Reconciled" for c in status.get("conditions", []))

            await _eventually(reconciled, "the Reconciled condition")

            # An update: the Secret is rewritten (update), a namespace relabelled.
            sm = kube.get(SMS, "shop", "checkout")
            sm["spec"]["endpoints"][0]["path"] = "/internal/metrics"
            kube.update(sm)
            await _eventually(lambda: "/internal/metrics" in _config(kube), "the Secret to follow the change")
            shop = kube.get("namespaces", "", "shop")
            shop["metadata"]["labels"]["monitoring"] = "disabled"
            kube.update(shop)
            await _eventually(
                lambda: "serviceMonitor/shop/" not in _config(kube),
                "the monitors of a deselected namespace to go",
            )
            # Both replicas ran for a while: the leader renewed the Lease, the other one read it.
            await _eventually(
                lambda: ("update", "coordination.k8s.io", "leases", "", namespace) in set(kube.calls),
                "the leader to renew its Lease",
            )
            leases = kube.list(LEASES, namespace)
            assert [lease["metadata"]["name"] for lease in leases] == ["config-operator"]
        finally:
            for proc, _ in running:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
            codes = [await asyncio.wait_for(proc.wait(), WAIT_S) for proc, _ in running]
        assert codes == [0] * replicas, logs()
        calls: set[Call] = {tuple(c) for c in kube.calls}  # type: ignore[misc]

    service_account = (namespace, pod["serviceAccountName"])
    denied, unused = compare(rules_of(documents, service_account), calls)
    assert denied == set(), f"calls the RBAC in rbac.yaml would deny: {sorted(denied)}"
    assert unused == set(), f"grants in rbac.yaml the operator never used: {sorted(unused)}"
