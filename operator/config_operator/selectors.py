"""Kubernetes label-selector matching, as pure functions.

``matches(selector, labels)`` answers whether a set of labels is selected; ``validate(selector)``
raises ValueError naming what is malformed. The semantics are the API server's: every matchLabels pair
and every matchExpressions requirement must hold, so ``{}`` selects everything. ``None`` (a nil
selector) is the caller's business: it means "nothing" for monitor selectors and "own namespace" for
namespace selectors, so these functions refuse it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from config_operator.resources import LabelSelector

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate(selector: LabelSelector | Mapping[str, Any]) -> None:
    """Raise ValueError with a one-line reason when ``selector`` is not a well-formed LabelSelector."""
    if not isinstance(selector, Mapping):
        raise ValueError(f"label selector must be a mapping, got {type(selector).__name__}")
    unknown = sorted(set(selector) - {"matchLabels", "matchExpressions"})
    if unknown:
        raise ValueError(f"label selector has unknown field(s): {', '.join(unknown)}")
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        raise ValueError("matchLabels must be a mapping of label names to values")
    for key, value in match_labels.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"matchLabels key {key!r} must be a non-empty string")
        if not isinstance(value, str):
            raise ValueError(f"matchLabels[{key}] must be a string, got {type(value).__name__}")
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise ValueError("matchExpressions must be a list")
    for i, req in enumerate(expressions):
        _validate_requirement(i, req)


def _validate_requirement(index: int, req: Any) -> None:
    where = f"matchExpressions[{index}]"
    if not isinstance(req, Mapping):
        raise ValueError(f"{where} must be a mapping")
    key = req.get("key")
    if not isinstance(key, str) or not key:
        raise ValueError(f"{where}.key must be a non-empty string")
    op = req.get("operator")
    if op not in OPERATORS:
        raise ValueError(f"{where}: unknown operator {op!r} (want one of {', '.join(OPERATORS)})")
    values = req.get("values") or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{where}.values must be a list of strings")
    if op in ("In", "NotIn") and not values:
        raise ValueError(f"{where}: operator {op} needs at least one value")
    if op in ("Exists", "DoesNotExist") and values:
        raise ValueError(f"{where}: operator {op} takes no values")


def matches(
    selector: LabelSelector | Mapping[str, Any], labels: Mapping[str, str], *, checked: bool = False
) -> bool:
    """Whether ``labels`` satisfy ``selector``; raises ValueError if the selector is malformed.

    ``checked``: the caller validated ``selector`` already, so it is not validated again (a
    generation matches the same selector against thousands of monitors)."""
    if not checked:
        validate(selector)
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for req in selector.get("matchExpressions") or []:
        key, op = req["key"], req["operator"]
        values = req.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True
