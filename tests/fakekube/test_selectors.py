"""Label and field selectors in query-string form: parsing and matching, as the API server does them."""

from __future__ import annotations

import pytest

from tests.fakekube.selectors import (
    Requirement,
    SelectorError,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"env": "prod", "tier": "web", "example.com/owner": "team-a"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("env=prod", True),
        ("env==prod", True),
        ("env = prod", True),
        ("env=dev", False),
        ("env!=dev", True),
        ("env!=prod", False),
        ("missing!=x", True),
        ("env in (dev,prod)", True),
        ("env in (dev, qa)", False),
        ("env notin (dev)", True),
        ("env notin (prod,dev)", False),
        ("missing notin (x)", True),
        ("missing in (x)", False),
        ("tier", True),
        ("missing", False),
        ("!missing", True),
        ("!tier", False),
        ("example.com/owner=team-a", True),
        ("env=prod,tier in (web),!missing", True),
        ("env=prod,tier notin (web)", False),
        ("missing=", False),
    ],
)
def test_label_selector_matches(selector: str, matches: bool) -> None:
    assert labels_match(parse_label_selector(selector), LABELS) is matches


def test_empty_value_matches_an_empty_label() -> None:
    assert labels_match(parse_label_selector("flag="), {"flag": ""})
    assert not labels_match(parse_label_selector("flag="), {})


def test_no_labels_at_all() -> None:
    assert labels_match(parse_label_selector("!a,b!=c"), None)
    assert not labels_match(parse_label_selector("a"), None)


def test_empty_value_lists_mean_the_empty_value() -> None:
    """apimachinery parses "()" as the set holding "": what a LabelSelector with values [""] becomes."""
    assert parse_label_selector("env in ()") == (Requirement("env", "in", frozenset({""})),)
    assert labels_match(parse_label_selector("env in ()"), {"env": ""})
    assert not labels_match(parse_label_selector("env in ()"), {})
    assert labels_match(parse_label_selector("env notin ()"), {"env": "x"})
    assert not labels_match(parse_label_selector("env notin ()"), {"env": ""})


def test_parsed_form() -> None:
    assert parse_label_selector("a in (x, y),!b,c!=d") == (
        Requirement("a", "in", frozenset({"x", "y"})),
        Requirement("b", "!"),
        Requirement("c", "!=", frozenset({"d"})),
    )


@pytest.mark.parametrize(
    "selector",
    [
        "env in prod",
        "env in (a",
        "a)",
        "a=b,,c",
        ",",
        "a=b c",
        "-bad=x",
        "a=in valid",
        "a in (b c)",
    ],
)
def test_bad_label_selectors(selector: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(selector)


def test_field_selectors() -> None:
    obj = {"metadata": {"name": "a", "namespace": "ns1"}}
    assert fields_match(parse_field_selector("metadata.name=a"), obj)
    assert fields_match(parse_field_selector("metadata.name==a,metadata.namespace=ns1"), obj)
    assert not fields_match(parse_field_selector("metadata.namespace!=ns1"), obj)
    assert fields_match(parse_field_selector(""), obj)
    with pytest.raises(SelectorError, match=r"spec\.nodeName"):
        parse_field_selector("spec.nodeName=x")
    with pytest.raises(SelectorError):
        parse_field_selector("metadata.name")
