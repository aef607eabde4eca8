"""PrometheusRules become rule files, and rule files become ConfigMaps, as prometheus-operator does it.

Pure functions, no I/O:

- ``rule_file(rule)``: one PrometheusRule's spec as a Prometheus rule file (keys sorted, multi-line
  strings as literal blocks), validated first the way Prometheus 2.42's rulefmt would (the structure,
  names, durations, label and annotation names, the size), plus a lexical check of expressions
  (brackets, strings) and templates (``{{ }}``); full PromQL and template parsing is Prometheus' own,
  checked with ``promtool check rules`` in the tests. A malformed rule raises ``ValueError`` with a
  one-line reason.
- ``select_rule_files(...)``: the rule files of the PrometheusRules a PrometheusConfig selects
  (``spec.ruleSelector`` nil selects none, ``{}`` all; ``spec.ruleNamespaceSelector`` nil means the
  PrometheusConfig's own namespace), named ``<namespace>-<name>-<uid>.yaml`` (the UID tells
  ``a-b/c`` from ``a/b-c``). A rejected rule is listed with its reason; the others go on.
- ``split(pc_name, files)``: prometheus-operator 0.93's first-fit split, in file-name order, into
  ConfigMaps ``prometheus-<name>-rulefiles-<n>`` of at most half of 1 MiB, counting values only. There is
  always at least one ConfigMap, as there, so the rule directory a pod mounts always exists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from config_operator.generate.common import Rejected, parse_duration_ms
from config_operator.generate.selection import selects
from config_operator.resources import ObjectKey

RULES_DIR = "/etc/prometheus/rules"
# Half of v1.MaxSecretSize (1 MiB), as prometheus-operator: the API's object limit also counts the
# metadata, so the data keeps a wide margin.
MAX_CONFIGMAP_DATA_BYTES = 1024 * 1024 // 2
KIND = "PrometheusRule"

SPEC_FIELDS = frozenset({"groups"})
GROUP_FIELDS = frozenset(
    {"name", "interval", "limit", "rules", "partial_response_strategy", "query_offset", "labels"}
)
RULE_FIELDS = frozenset({"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"})
# Fields Prometheus 2.42 does not know; prometheus-operator drops them for old versions, with a log
# line nobody reads. Here the rule is rejected instead, with a reason in an Event.
_NEEDS_NEWER = {"query_offset": "2.53", "labels": "3.0"}

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_PARTIAL_RESPONSE = re.compile(r"^(?i:abort|warn)?$")


@dataclass(frozen=True)
class RuleConfigMap:
    """One ConfigMap of rule files: its name and its data (file name -> rule file)."""

    name: str
    data: Mapping[str, str]


@dataclass(frozen=True)
class RuleFiles:
    """What the PrometheusRules selected by one PrometheusConfig become."""

    files: Mapping[str, str]
    """Accepted rule files by file name, sorted."""
    config_maps: tuple[RuleConfigMap, ...]
    """The ConfigMaps holding them (at least one)."""
    rejected: tuple[Rejected, ...]
    """Selected PrometheusRules that were skipped, by namespace/name."""

    @property
    def rule_files(self) -> list[str]:
        """The config's rule_files entries: one glob per ConfigMap, where a pod mounts it."""
        return [f"{RULES_DIR}/{cm.name}/*.yaml" for cm in self.config_maps]


def configmap_name(pc_name: str, index: int) -> str:
    """``prometheus-<name>-rulefiles-<index>``, prometheus-operator's name."""
    return f"prometheus-{pc_name}-rulefiles-{index}"


def file_name(rule: Mapping[str, Any]) -> str:
    """``<namespace>-<name>-<uid>.yaml``."""
    meta: Any = rule.get("metadata") or {}
    key = ObjectKey.of(rule)
    return f"{key.namespace}-{key.name}-{meta.get('uid') or ''}.yaml"


def select_rule_files(
    pc_namespace: str,
    pc_name: str,
    selector: Mapping[str, Any] | None,
    ns_selector: Mapping[str, Any] | None,
    rules: Sequence[Mapping[str, Any]],
    ns_labels: Mapping[str, Mapping[str, str]],
) -> RuleFiles:
    """The rule files and ConfigMaps for the PrometheusRules that the selectors pick (see module doc)."""
    files: dict[str, str] = {}
    rejected: list[Rejected] = []
    for rule in sorted(rules, key=ObjectKey.of):
        if not selects(selector, ns_selector, pc_namespace, ns_labels, rule):
            continue
        key = ObjectKey.of(rule)
        try:
            content = rule_file(rule)
        except ValueError as exc:
            rejected.append(Rejected(KIND, key.namespace, key.name, str(exc)))
            continue
        files[file_name(rule)] = content
    ordered = {name: files[name] for name in sorted(files)}
    return RuleFiles(files=ordered, config_maps=split(pc_name, ordered), rejected=tuple(rejected))


def split(pc_name: str, files: Mapping[str, str]) -> tuple[RuleConfigMap, ...]:
    """First fit in name order: a file that would overflow the current ConfigMap starts the next one.

    Every file must already be at most MAX_CONFIGMAP_DATA_BYTES (``rule_file`` rejects larger ones).
    """
    buckets: list[dict[str, str]] = [{}]
    size = 0
    for name in sorted(files):
        length = len(files[name].encode())
        if size + length > MAX_CONFIGMAP_DATA_BYTES:
            buckets.append({})
            size = 0
        buckets[-1][name] = files[name]
        size += length
    return tuple(RuleConfigMap(configmap_name(pc_name, i), data) for i, data in enumerate(buckets))


def rule_file(rule: Mapping[str, Any]) -> str:
    """The rule file of one PrometheusRule; ValueError names what Prometheus would refuse."""
    spec = rule.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise ValueError("spec must be a mapping")
    unknown = sorted(set(spec) - SPEC_FIELDS)
    if unknown:
        raise ValueError(f"unsupported field(s) in spec: {', '.join(map(str, unknown))}")
    groups = spec.get("groups")
    if groups is None:
        groups = []
    if not isinstance(groups, list):
        raise ValueError("spec.groups must be a list")
    out_groups = []
    seen: set[str] = set()
    for i, group in enumerate(groups):
        where = f"spec.groups[{i}]"
        out = _group(where, group)
        if out["name"] in seen:
            raise ValueError(f"{where}: group name {out['name']!r} is repeated in the same file")
        seen.add(out["name"])
        out_groups.append(out)
    content = _dump({"groups": out_groups})
    if len(content.encode()) > MAX_CONFIGMAP_DATA_BYTES:
        raise ValueError(
            f"the rendered rule file is {len(content.encode())} bytes, above the limit of "
            f"{MAX_CONFIGMAP_DATA_BYTES} bytes for one ConfigMap"
        )
    return content


def _group(where: str, group: Any) -> dict[str, Any]:
    if not isinstance(group, Mapping):
        raise ValueError(f"{where} must be a mapping")
    unknown = sorted(set(group) - GROUP_FIELDS)
    if unknown:
        raise ValueError(f"{where}: unknown field(s): {', '.join(map(str, unknown))}")
    for field, version in _NEEDS_NEWER.items():
        if group.get(field) is not None:
            raise ValueError(f"{where}.{field} needs Prometheus >= {version}")
    name = group.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}.name must be a non-empty string")
    out: dict[str, Any] = {}
    interval = group.get("interval")
    if interval not in (None, ""):  # an empty interval means the global one, as an absent one
        out["interval"] = _duration(f"{where}.interval", interval)
    limit = group.get("limit")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise ValueError(f"{where}.limit must be a non-negative integer")
        out["limit"] = limit
    out["name"] = name
    strategy = group.get("partial_response_strategy")
    # Thanos Ruler's field; Prometheus' rulefmt refuses it, so it is checked and left out.
    if strategy is not None and (not isinstance(strategy, str) or not _PARTIAL_RESPONSE.match(strategy)):
        raise ValueError(f"{where}.partial_response_strategy must be abort or warn")
    rules = group.get("rules")
    if rules is None:
        rules = []
    if not isinstance(rules, list):
        raise ValueError(f"{where}.rules must be a list")
    out["rules"] = [_rule(f"{where}.rules[{j}]", r) for j, r in enumerate(rules)]
    return out


def _rule(where: str, rule: Any) -> dict[str, Any]:
    if not isinstance(rule, Mapping):
        raise ValueError(f"{where} must be a mapping")
    unknown = sorted(set(rule) - RULE_FIELDS)
    if unknown:
        raise ValueError(f"{where}: unknown field(s): {', '.join(map(str, unknown))}")
    record, alert = rule.get("record") or "", rule.get("alert") or ""
    if not isinstance(record, str) or not isinstance(alert, str):
        raise ValueError(f"{where}: record and alert must be strings")
    if bool(record) == bool(alert):
        raise ValueError(f"{where}: exactly one of 'record' and 'alert' must be set")
    expr = rule.get("expr")
    if isinstance(expr, bool) or not isinstance(expr, (str, int)) or str(expr).strip() == "":
        raise ValueError(f"{where}: field 'expr' must be set")
    if isinstance(expr, str):
        problem = _unbalanced(expr)
        if problem:
            raise ValueError(f"{where}.expr: {problem}")
    out: dict[str, Any] = {}
    if alert:
        out["alert"] = alert
    annotations = _string_map(f"{where}.annotations", rule.get("annotations"), "annotation name")
    for field, texts in (("labels", rule.get("labels") or {}), ("annotations", annotations)):
        for name, text in texts.items() if isinstance(texts, Mapping) else ():
            if isinstance(text, str) and text.count("{{") != text.count("}}"):
                raise ValueError(f"{where}.{field}[{name}]: unbalanced '{{{{' and '}}}}' in the template")
    if record:
        if not _METRIC_NAME.match(record):
            raise ValueError(f"{where}: invalid recording rule name: {record}")
        for field in ("annotations", "for", "keep_firing_for"):
            if rule.get(field):
                raise ValueError(f"{where}: invalid field {field!r} in recording rule")
    if annotations:
        out["annotations"] = annotations
    out["expr"] = expr
    for field in ("for", "keep_firing_for"):
        value = rule.get(field)
        if value not in (None, ""):
            out[field] = _duration(f"{where}.{field}", value)
    labels = _string_map(f"{where}.labels", rule.get("labels"), "label name")
    if "__name__" in labels:
        raise ValueError(f"{where}.labels: invalid label name: __name__")
    if labels:
        out["labels"] = labels
    if record:
        out["record"] = record
    return out


_CLOSING = {")": "(", "]": "[", "}": "{"}


def _unbalanced(expr: str) -> str | None:
    """A cheap lexical check of a PromQL expression (Prometheus parses it fully): brackets that do not
    pair up, or a string that does not end. None when both are fine."""
    stack: list[str] = []
    i = 0
    while i < len(expr):
        c = expr[i]
        if c in "\"'`":
            end = i + 1
            while end < len(expr) and expr[end] != c:
                end += 2 if expr[end] == "\\" and c != "`" else 1
            if end >= len(expr):
                return f"unterminated string starting at character {i + 1}"
            i = end + 1
            continue
        if c == "#":  # a comment runs to the end of the line
            newline = expr.find("\n", i)
            i = len(expr) if newline < 0 else newline
            continue
        if c in "([{":
            stack.append(c)
        elif c in _CLOSING and (not stack or stack.pop() != _CLOSING[c]):
            return f"unexpected {c!r} at character {i + 1}"
        i += 1
    return f"unclosed {stack[-1]!r}" if stack else None


def _string_map(where: str, value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be a mapping")
    for k, v in value.items():
        if not isinstance(k, str) or not _LABEL_NAME.match(k):
            raise ValueError(f"{where}: invalid {what}: {k}")
        if not isinstance(v, str):
            raise ValueError(f"{where}[{k}] must be a string")
    return {k: value[k] for k in sorted(value)}


def _duration(where: str, value: Any) -> str:
    try:
        parse_duration_ms(value)
    except (ValueError, TypeError):
        raise ValueError(f"{where}: not a valid duration: {value!r}") from None
    return str(value)


# Sorted keys (as prometheus-operator's JSON-based marshalling gives), and expressions and
# descriptions that span lines as literal blocks, so a rule file reads like the PrometheusRule.
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _RuleDumper(_BaseDumper):  # type: ignore[valid-type,misc]
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_RuleDumper.add_representer(str, _represent_str)


def _dump(data: Any) -> str:
    return yaml.dump(
        data, Dumper=_RuleDumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1 << 30
    )
