"""The operator's RBAC (examples/kubernetes/operator/rbac.yaml) as rules, checked against API calls.

The fake API server records each call as (verb, apiGroup, resource, subresource, namespace), which is
what RBAC authorizes, and who made it (``FakeKube.calls_by(identity)``: the bearer token, else the
User-Agent). tests/examples/test_rbac.py compares a full recorded run with the rules both ways, and
each replica's own calls with them; the operator's other tests check after each test that no call
they saw would be denied (the chaos test per replica too).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tests.examples import manifests as m

OPERATOR = m.EXAMPLES / "kubernetes" / "operator"

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


def operator_manifests() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The documents of examples/kubernetes/operator/ (top folder), and its Deployment among them."""
    documents = [d.body for d in m.manifests() if d.path.parent == OPERATOR]
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    return documents, deployment


def operator_rules() -> list[Rule]:
    """The rules bound to the ServiceAccount the example Deployment runs as."""
    documents, deployment = operator_manifests()
    service_account = (
        deployment["metadata"]["namespace"],
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
    )
    return rules_of(documents, service_account)


def denied_anywhere(calls: Iterable[Call]) -> set[Call]:
    """The calls that no rule would allow in any namespace.

    Tests run the operator in namespaces of their own choosing (the Lease in "default", say), so only
    the verb, group, resource and subresource are checked; test_rbac.py checks namespaces too.
    """
    rules = [dataclasses.replace(r, namespace=None) for r in operator_rules()]
    return {c for c in calls if not any(r.allows(c) for r in rules)}
