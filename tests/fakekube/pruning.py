"""Structural pruning and defaulting, as the API server applies a CRD's openAPIV3Schema on every write.

A real API server drops every field that the (structural) schema does not name, unless the node says
``x-kubernetes-preserve-unknown-fields: true``; it keeps ``apiVersion``, ``kind`` and ``metadata`` at the
root (and in ``x-kubernetes-embedded-resource`` nodes), and fills in ``default`` values for absent
properties. That is what lets a subset CRD silently eat a field the operator needs, so the fake server
does the same, and the tests can prove that every field of the real-world monitors survives.

Validation (types, patterns, enums) is not modelled: pruning is what loses data silently.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

_ROOT_KEPT = ("apiVersion", "kind", "metadata")


@dataclass
class Pruned:
    """The object as stored, and the JSON paths of the fields that were dropped."""

    obj: Any
    dropped: list[str] = field(default_factory=list)


def prune(obj: Any, schema: Mapping[str, Any]) -> Pruned:
    """``obj`` pruned and defaulted against a CRD version's ``openAPIV3Schema``; ``obj`` is not changed."""
    result = Pruned(None)
    result.obj = _node(copy.deepcopy(obj), schema, "", result.dropped, root=True)
    return result


def crd_schemas(crd: Mapping[str, Any]) -> dict[tuple[str, str, str], Mapping[str, Any]]:
    """(group, version, plural) -> openAPIV3Schema for each served version of a CustomResourceDefinition."""
    spec = crd.get("spec") or {}
    out = {}
    for version in spec.get("versions") or []:
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if version.get("served", True) and schema is not None:
            out[(spec["group"], version["name"], spec["names"]["plural"])] = schema
    return out


def _node(value: Any, schema: Mapping[str, Any], path: str, dropped: list[str], *, root: bool = False) -> Any:
    if isinstance(value, dict):
        return _object(value, schema, path, dropped, root=root)
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            return [_node(v, items, f"{path}[{i}]", dropped) for i, v in enumerate(value)]
    return value


def _object(value: Obj, schema: Mapping[str, Any], path: str, dropped: list[str], *, root: bool) -> Obj:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    kept_meta = root or schema.get("x-kubernetes-embedded-resource") is True
    out: Obj = {}
    for key, item in value.items():
        where = f"{path}.{key}"
        if kept_meta and key in _ROOT_KEPT:  # the API server handles these itself, whatever the schema says
            out[key] = item
        elif key in properties:
            out[key] = _node(item, properties[key], where, dropped)
        elif isinstance(additional, Mapping):
            out[key] = _node(item, additional, where, dropped)
        elif additional is True or preserve:
            out[key] = item
        else:
            dropped.append(where)
    for key, sub in properties.items():
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
    return out
