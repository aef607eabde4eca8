"""Which monitors a PrometheusConfig selects, as prometheus-operator decides it. No I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from config_operator import selectors
from config_operator.generate.common import InvalidConfig
from config_operator.generate.spec import selector_field
from config_operator.resources import (
    Namespace,
    ObjectKey,
    PodMonitor,
    PrometheusConfig,
    ServiceMonitor,
    labels_of,
)

# The spec's <prefix>Selector and <prefix>NamespaceSelector pick objects of each kind.
SELECTOR_PREFIXES = {
    "ServiceMonitor": "serviceMonitor",
    "PodMonitor": "podMonitor",
    "PrometheusRule": "rule",
    "Probe": "probe",
}


def may_select(
    pc: PrometheusConfig,
    obj: ServiceMonitor | PodMonitor | Namespace | Mapping[str, Any],
    namespaces: Sequence[Namespace],
    *,
    kind: str | None = None,
) -> bool:
    """Could ``pc`` select ``obj`` (a ServiceMonitor, PodMonitor, PrometheusRule, Probe or Namespace)?

    Used to decide which PrometheusConfigs to enqueue when ``obj`` changes; errs on the side of True
    (a malformed ``pc`` answers True, so its reconcile reports the problem). List items carry no
    ``kind``, so pass ``kind=`` when the caller knows it; otherwise it is read from the object, then
    guessed from the spec.
    """
    kind = kind or kind_of(obj)
    spec: Any = pc.get("spec") or {}
    if not isinstance(spec, Mapping):
        return True
    try:
        if kind == "Namespace":
            # A namespace's labels can move monitors in or out; only a nil namespace selector (own
            # namespace only) ignores them.
            return any(spec.get(f"{p}NamespaceSelector") is not None for p in SELECTOR_PREFIXES.values())
        prefix = SELECTOR_PREFIXES.get(kind, "podMonitor")
        selector = selector_field(spec, f"{prefix}Selector")
        ns_selector = selector_field(spec, f"{prefix}NamespaceSelector")
    except InvalidConfig:
        return True
    ns_labels = {ObjectKey.of(ns).name: labels_of(ns) for ns in namespaces}
    return selects(selector, ns_selector, ObjectKey.of(pc).namespace, ns_labels, obj)


def kind_of(obj: Mapping[str, Any]) -> str:
    kind = obj.get("kind")
    if isinstance(kind, str) and kind:
        return kind
    # Namespaces have a spec too ({finalizers: [...]}); the endpoints lists tell monitors apart.
    spec = obj.get("spec")
    if isinstance(spec, Mapping) and "podMetricsEndpoints" in spec:
        return "PodMonitor"
    if isinstance(spec, Mapping) and "endpoints" in spec:
        return "ServiceMonitor"
    return "Namespace"


def selects(
    selector: Mapping[str, Any] | None,
    ns_selector: Mapping[str, Any] | None,
    own_namespace: str,
    ns_labels: Mapping[str, Mapping[str, str]],
    monitor: Mapping[str, Any],
    *,
    checked: bool = False,
) -> bool:
    """Whether the selectors select ``monitor``; ``checked``: both were validated already (as
    ``selector_field`` gives them), so they are not validated again for every monitor."""
    # A nil monitor selector selects nothing (prometheus-operator); a nil namespace selector means
    # the PrometheusConfig's own namespace.
    if selector is None:
        return False
    key = ObjectKey.of(monitor)
    if ns_selector is None:
        if key.namespace != own_namespace:
            return False
    elif not selectors.matches(ns_selector, ns_labels.get(key.namespace, {}), checked=checked):
        return False
    return selectors.matches(selector, labels_of(monitor), checked=checked)
