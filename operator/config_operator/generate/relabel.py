"""Relabel configs: prometheus-operator's camelCase RelabelConfig as Prometheus YAML. No I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from config_operator.generate.common import LABEL_NAME, Reject

# Prometheus accepts $1 / ${name} references in a replace rule's target_label.
_REPLACE_TARGET = re.compile(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$")
# Go's RE2 has no lookaround or backreferences; Python's re would accept them, Prometheus would not.
_NOT_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]")


RELABEL_FIELDS = frozenset(
    {"sourceLabels", "separator", "targetLabel", "regex", "modulus", "replacement", "action"}
)
# Prometheus 2.42's relabel actions (keepequal/dropequal arrived in 2.41).
RELABEL_ACTIONS = frozenset(
    {
        "replace",
        "keep",
        "drop",
        "hashmod",
        "labelmap",
        "labeldrop",
        "labelkeep",
        "lowercase",
        "uppercase",
        "keepequal",
        "dropequal",
    }
)


def relabel_list(ep: Mapping[str, Any], field: str) -> list[dict[str, Any]]:
    value = ep.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        raise Reject(f"{field} must be a list")
    out = []
    for i, rc in enumerate(value):
        try:
            out.append(relabel_config(rc))
        except ValueError as exc:
            raise Reject(f"{field}[{i}]: {exc}") from None
    return out


def relabel_config(rc: Any) -> dict[str, Any]:
    """A prometheus-operator RelabelConfig (camelCase) as Prometheus YAML, validated as Prometheus 2.42
    would; ValueError names the problem."""
    if not isinstance(rc, Mapping):
        raise ValueError("must be a mapping")
    if not RELABEL_FIELDS.issuperset(rc):
        unknown = sorted(set(rc) - RELABEL_FIELDS)
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    action = rc.get("action") or "replace"
    if not isinstance(action, str) or action.lower() not in RELABEL_ACTIONS:
        raise ValueError(f"unknown relabel action {action!r}")
    action = action.lower()
    source = rc.get("sourceLabels")
    if source is not None and (
        not isinstance(source, list) or not all(isinstance(s, str) and LABEL_NAME.match(s) for s in source)
    ):
        raise ValueError(f"sourceLabels {source!r} must be a list of label names")
    regex = rc.get("regex")
    if regex is not None:
        if not isinstance(regex, str):
            raise ValueError("regex must be a string")
        _check_regex(regex)
    target = rc.get("targetLabel")
    modulus = rc.get("modulus")
    separator = rc.get("separator")
    replacement = rc.get("replacement")
    for field, v in (("targetLabel", target), ("separator", separator), ("replacement", replacement)):
        if v is not None and not isinstance(v, str):
            raise ValueError(f"{field} must be a string")
    if modulus is not None and (not isinstance(modulus, int) or isinstance(modulus, bool) or modulus < 0):
        raise ValueError("modulus must be a non-negative integer")
    if action in ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal") and not target:
        raise ValueError(f"relabel action {action} needs a targetLabel")
    if target:
        pattern = _REPLACE_TARGET if action == "replace" else LABEL_NAME
        if not pattern.match(target):
            raise ValueError(f"{target!r} is not a valid target label for action {action}")
    if action == "hashmod" and not modulus:
        raise ValueError("relabel action hashmod needs a modulus greater than 0")
    if action in ("labeldrop", "labelkeep", "keepequal", "dropequal"):
        extra = [
            f
            for f, v in (("modulus", modulus), ("separator", separator), ("replacement", replacement))
            if v is not None
        ]
        if action in ("labeldrop", "labelkeep"):
            extra += [f for f, v in (("sourceLabels", source), ("targetLabel", target)) if v]
        else:
            extra += ["regex"] if regex is not None else []
        if extra:
            raise ValueError(f"relabel action {action} takes no {', '.join(extra)}")

    out: dict[str, Any] = {}
    if source:
        out["source_labels"] = list(source)
    if separator is not None:
        out["separator"] = separator
    if target:
        out["target_label"] = target
    if regex is not None:
        out["regex"] = regex
    if modulus:
        out["modulus"] = modulus
    if replacement is not None:
        out["replacement"] = replacement
    out["action"] = action
    return out


def _check_regex(regex: str) -> None:
    if _NOT_RE2.search(regex):
        raise ValueError(f"regex {regex!r} uses lookaround or backreferences, which Prometheus (RE2) rejects")
    try:
        re.compile(regex)
    except re.error as exc:
        raise ValueError(f"invalid regex {regex!r}: {exc}") from None
