"""The rule ConfigMaps ``prometheus-<name>-rulefiles-<n>`` of one PrometheusConfig, and the Events
about PrometheusRules it could not use.

``plan()`` is pure: from what generation wants (``RuleFiles``, or None when spec.ruleSelector is nil)
and the ConfigMaps of this PrometheusConfig in the informer's cache, which to create, which to replace
(data, our label or our ownerReference differ) and which to delete. Nothing is written when nothing
differs, so a resync leaves the ConfigMaps (and the pods' rule directories) alone.

``Writer`` does the calls, in prometheus-operator's order: creates and replaces before the Secret is
written, deletions after it, so Prometheus never loses rules in between. A 409 (the cache lagged
behind a change) on a replace goes back to the queue, whose retry sees a fresher cache; a 409 on a
create takes the name over; a 404 on delete means done.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from config_operator.client import ApiError
from config_operator.generate.common import Rejected
from config_operator.generate.rules import RuleConfigMap, RuleFiles
from config_operator.resources import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    MONITORING_API_VERSION,
    PROMETHEUS_RULE_KIND,
    RULEFILES_LABEL,
    ConfigMap,
    ObjectKey,
    OwnerReference,
)

# prometheus-operator's reason for a PrometheusRule it rejects.
INVALID_CONFIGURATION = "InvalidConfiguration"


class ConfigMapWrites(Protocol):
    """The ConfigMap calls (``client.Kube`` has them)."""

    async def create_config_map(self, namespace: str, body: ConfigMap) -> ConfigMap: ...
    async def replace_config_map(self, namespace: str, name: str, body: ConfigMap) -> ConfigMap: ...
    async def delete_config_map(self, namespace: str, name: str) -> None: ...


@dataclass(frozen=True)
class Plan:
    """What to do to the rule ConfigMaps of one PrometheusConfig."""

    create: tuple[ConfigMap, ...] = ()
    replace: tuple[ConfigMap, ...] = ()
    delete: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.create or self.replace or self.delete)


def owned(pc_key: ObjectKey, cached: Iterable[dict[str, Any]]) -> list[ConfigMap]:
    """The cached rule ConfigMaps that belong to the PrometheusConfig ``pc_key``, by name."""
    mine = [
        cm
        for cm in cached
        if ObjectKey.of(cm).namespace == pc_key.namespace
        and ((cm.get("metadata") or {}).get("labels") or {}).get(RULEFILES_LABEL) == pc_key.name
    ]
    return sorted(mine, key=ObjectKey.of)  # type: ignore[arg-type]


def plan(
    pc_key: ObjectKey, owner: OwnerReference, rules: RuleFiles | None, current: Sequence[ConfigMap]
) -> Plan:
    """Creates, replaces and deletes that make ``current`` what ``rules`` asks for."""
    by_name = {ObjectKey.of(cm).name: cm for cm in current}
    wanted = rules.config_maps if rules is not None else ()
    create: list[ConfigMap] = []
    replace: list[ConfigMap] = []
    for rcm in wanted:
        body = desired(pc_key, owner, rcm, by_name.get(rcm.name))
        if body is None:
            continue
        (replace if rcm.name in by_name else create).append(body)
    names = {rcm.name for rcm in wanted}
    delete = tuple(sorted(name for name in by_name if name not in names))
    return Plan(tuple(create), tuple(replace), delete)


def desired(
    pc_key: ObjectKey, owner: OwnerReference, rcm: RuleConfigMap, current: ConfigMap | None
) -> ConfigMap | None:
    """The ConfigMap to write for ``rcm``, or None when ``current`` already is it.

    Other labels, annotations and non-controller owners on ``current`` are kept, and its
    resourceVersion carried over, so that a concurrent change fails the write with 409.
    """
    data = dict(rcm.data)
    ours = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, RULEFILES_LABEL: pc_key.name}
    if current is None:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": rcm.name,
                "namespace": pc_key.namespace,
                "labels": ours,
                "ownerReferences": [owner],
            },
            "data": data,
        }
    meta = current.get("metadata") or {}
    labels = dict(meta.get("labels") or {})
    owners = list(meta.get("ownerReferences") or [])
    if (
        (current.get("data") or {}) == data
        and not current.get("binaryData")
        and all(labels.get(k) == v for k, v in ours.items())
        and owner in owners
    ):
        return None
    labels.update(ours)
    owners = [o for o in owners if not o.get("controller") and o.get("uid") != owner.get("uid")] + [owner]
    updated: ConfigMap = copy.deepcopy(current)
    updated.setdefault("metadata", {}).update({"labels": labels, "ownerReferences": owners})
    updated["data"] = data
    updated.pop("binaryData", None)
    return updated


@dataclass
class Writer:
    """Carries out a Plan against the API."""

    kube: ConfigMapWrites

    async def write(self, namespace: str, todo: Plan) -> list[str]:
        """Create and replace; the names written (raises ApiError, 409 included, for the queue)."""
        written = []
        for body in todo.create:
            name = ObjectKey.of(body).name
            try:
                await self.kube.create_config_map(namespace, body)
            except ApiError as exc:
                if not exc.conflict:
                    raise
                # That name exists but is not in our (label-selected) cache: made by hand, or by us a
                # moment ago. The name is this PrometheusConfig's by convention, so take it over
                # (a replace without resourceVersion is unconditional).
                await self.kube.replace_config_map(namespace, name, body)
            written.append(name)
        for body in todo.replace:
            name = ObjectKey.of(body).name
            await self.kube.replace_config_map(namespace, name, body)
            written.append(name)
        return written

    async def delete(self, namespace: str, todo: Plan) -> list[str]:
        """Delete the stale ones; one already gone counts as deleted."""
        for name in todo.delete:
            try:
                await self.kube.delete_config_map(namespace, name)
            except ApiError as exc:
                if not exc.not_found:
                    raise
        return list(todo.delete)


def rejected_rule_event(rejected: Rejected, uid: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` (an Event about the PrometheusConfig) turned into one about the rejected PrometheusRule,
    in its namespace, with prometheus-operator's reason and message."""
    event = copy.deepcopy(body)
    suffix = str(event["metadata"]["name"]).rpartition(".")[2]
    event["metadata"].update({"name": f"{rejected.name}.{suffix}", "namespace": rejected.namespace})
    event["involvedObject"] = {
        "apiVersion": MONITORING_API_VERSION,
        "kind": PROMETHEUS_RULE_KIND,
        "name": rejected.name,
        "namespace": rejected.namespace,
        "uid": uid,
    }
    event["type"] = "Warning"
    event["reason"] = INVALID_CONFIGURATION
    # The API server refuses an Event message over 1 KiB.
    message = f"PrometheusRule {rejected.name} was rejected due to invalid configuration: {rejected.reason}"
    event["message"] = message[:1024]
    return event
