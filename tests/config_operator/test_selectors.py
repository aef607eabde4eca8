"""Label-selector matching, checked against the API server's semantics, one row per rule."""

from __future__ import annotations

from typing import Any

import pytest

from config_operator.selectors import matches, validate

LABELS = {"app": "web", "env": "prod", "team": ""}

CASES: list[tuple[dict[str, Any], dict[str, str], bool]] = [
    ({}, LABELS, True),
    ({}, {}, True),
    ({"matchLabels": {}}, LABELS, True),
    ({"matchLabels": {"app": "web"}}, LABELS, True),
    ({"matchLabels": {"app": "api"}}, LABELS, False),
    ({"matchLabels": {"app": "web", "env": "dev"}}, LABELS, False),
    ({"matchLabels": {"missing": ""}}, LABELS, False),
    ({"matchLabels": {"team": ""}}, LABELS, True),
    ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "staging"]}]}, LABELS, True),
    ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]}, LABELS, False),
    ({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}, LABELS, False),
    ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]}, LABELS, True),
    ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, LABELS, False),
    # NotIn matches when the key is absent, as in Kubernetes.
    ({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}, LABELS, True),
    ({"matchExpressions": [{"key": "team", "operator": "Exists"}]}, LABELS, True),
    ({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, LABELS, False),
    ({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, LABELS, True),
    ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, LABELS, False),
    (
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        },
        LABELS,
        True,
    ),
    (
        {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]},
        LABELS,
        False,
    ),
]


@pytest.mark.parametrize(("selector", "labels", "expected"), CASES)
def test_matches(selector: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert matches(selector, labels) is expected
    assert matches(selector, labels, checked=True) is expected  # validated once, by the caller


MALFORMED: list[tuple[Any, str]] = [
    ("app=web", "must be a mapping"),
    ({"matchLabel": {"a": "b"}}, "unknown field(s): matchLabel"),
    ({"matchLabels": ["a"]}, "matchLabels must be a mapping"),
    ({"matchLabels": {"a": 1}}, "matchLabels[a] must be a string"),
    ({"matchExpressions": {"key": "a"}}, "matchExpressions must be a list"),
    ({"matchExpressions": ["a"]}, "matchExpressions[0] must be a mapping"),
    ({"matchExpressions": [{"operator": "Exists"}]}, "matchExpressions[0].key"),
    (
        {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]},
        "unknown operator 'Equals'",
    ),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}, "needs at least one value"),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn"}]}, "needs at least one value"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["b"]}]}, "takes no values"),
    (
        {"matchExpressions": [{"key": "a", "operator": "In", "values": "b"}]},
        "values must be a list of strings",
    ),
]


@pytest.mark.parametrize(("selector", "message"), MALFORMED)
def test_malformed_selector_raises_value_error(selector: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        validate(selector)
    assert message in str(info.value)
    with pytest.raises(ValueError):
        matches(selector, LABELS)
