"""Label and field selectors in their query-string form, as the API server parses them. Pure, no I/O.

Label selectors: equality-based (``a=b``, ``a==b``, ``a!=b``) and set-based (``a in (x,y)``,
``a notin (x)``, ``a``, ``!a``), comma-separated, all of which must hold. Field selectors: only
``metadata.name`` and ``metadata.namespace`` with ``=``, ``==`` and ``!=``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Operator = Literal["=", "!=", "in", "notin", "exists", "!"]


class SelectorError(ValueError):
    """The selector string cannot be parsed; the message names the offending part."""


@dataclass(frozen=True)
class Requirement:
    """One clause of a label selector."""

    key: str
    op: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether these labels satisfy the clause (a missing key satisfies ``!=`` and ``notin``)."""
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        # "!=" and "notin" match when the key is absent, as in Kubernetes.
        return not present or labels[self.key] not in self.values


_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def _split_clauses(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    clauses: list[str] = []
    depth = 0
    start = 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unbalanced ')' in {text!r}")
        elif char == "," and depth == 0:
            clauses.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise SelectorError(f"unbalanced '(' in {text!r}")
    clauses.append(text[start:])
    return clauses


def _check_key(key: str, clause: str) -> str:
    if not _KEY.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
        raise SelectorError(f"invalid label key {key!r} in {clause!r}")
    return key


def _check_value(value: str, clause: str) -> str:
    if not _VALUE.match(value) or len(value) > 63:
        raise SelectorError(f"invalid label value {value!r} in {clause!r}")
    return value


_SET_CLAUSE = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQ_CLAUSE = re.compile(r"^(?P<key>[^=!\s]+)\s*(?P<op>==|=|!=)\s*(?P<value>\S*)$")


def _parse_clause(raw: str) -> Requirement:
    clause = raw.strip()
    if not clause:
        raise SelectorError("empty requirement in label selector")
    if m := _SET_CLAUSE.match(clause):
        # "k in ()" is "k in ('')", as apimachinery parses it: the empty string is a label value.
        values = [v.strip() for v in m["values"].split(",")]
        op: Operator = "in" if m["op"] == "in" else "notin"
        return Requirement(
            _check_key(m["key"], clause), op, frozenset(_check_value(v, clause) for v in values)
        )
    if m := _EQ_CLAUSE.match(clause):
        op = "!=" if m["op"] == "!=" else "="
        return Requirement(_check_key(m["key"], clause), op, frozenset({_check_value(m["value"], clause)}))
    if clause.startswith("!"):
        return Requirement(_check_key(clause[1:].strip(), clause), "!")
    return Requirement(_check_key(clause, clause), "exists")


def parse_label_selector(text: str) -> tuple[Requirement, ...]:
    """Parse a labelSelector query parameter; the empty string selects everything."""
    if not text.strip():
        return ()
    return tuple(_parse_clause(c) for c in _split_clauses(text))


def labels_match(requirements: tuple[Requirement, ...], labels: Mapping[str, str] | None) -> bool:
    """Whether every requirement holds for these labels."""
    present = labels or {}
    return all(r.matches(present) for r in requirements)


@dataclass(frozen=True)
class FieldRequirement:
    """One clause of a field selector."""

    field: Literal["metadata.name", "metadata.namespace"]
    equal: bool
    value: str


_FIELD_CLAUSE = re.compile(r"^\s*(?P<field>[A-Za-z.]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^,]*?)\s*$")


def parse_field_selector(text: str) -> tuple[FieldRequirement, ...]:
    """Parse a fieldSelector query parameter (metadata.name and metadata.namespace only)."""
    if not text.strip():
        return ()
    result: list[FieldRequirement] = []
    for clause in text.split(","):
        m = _FIELD_CLAUSE.match(clause)
        if not m:
            raise SelectorError(f"invalid field selector requirement {clause!r}")
        name = m["field"]
        if name == "metadata.name":
            result.append(FieldRequirement("metadata.name", m["op"] != "!=", m["value"]))
        elif name == "metadata.namespace":
            result.append(FieldRequirement("metadata.namespace", m["op"] != "!=", m["value"]))
        else:
            raise SelectorError(f'field label not supported: "{name}"')
    return tuple(result)


def fields_match(requirements: tuple[FieldRequirement, ...], obj: Mapping[str, Any]) -> bool:
    """Whether every field requirement holds for this object."""
    meta = obj.get("metadata") or {}
    for req in requirements:
        actual = meta.get("name" if req.field == "metadata.name" else "namespace") or ""
        if (actual == req.value) != req.equal:
            return False
    return True
