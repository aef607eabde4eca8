"""Fuzzing: the operator's label-selector matching agrees with the fake API server's, on random input.

The operator matches LabelSelector objects (config_operator/selectors.py); the API server parses the
query-string form (tests/fakekube/selectors.py, as apimachinery's labels.Parse). A selector is turned
into that string the way apimachinery's LabelSelectorAsSelector does, and both must give the same
answer for every set of labels, directly and through the fake server's list (the code path of
``?labelSelector=`` on a list or a watch).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config_operator.selectors import matches, validate
from tests.fakekube import FakeKube, labels_match, parse_label_selector

# A small pool of keys, so that selectors and labels talk about the same ones often, plus random
# well-formed ones (optional DNS prefix, name of letters, digits, '-', '_', '.').
_NAME = st.from_regex(r"\A[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?\Z")
_PREFIX = st.from_regex(r"\A[a-z0-9]([-a-z0-9.]{0,8}[a-z0-9])?/\Z")
KEYS = st.one_of(
    st.sampled_from(["app", "tier", "env", "example.com/team", "a.b-c/x_y", "A1", "k8s.io/n.a-m_e"]),
    st.builds(lambda prefix, name: prefix + name, st.one_of(st.just(""), _PREFIX), _NAME),
)
# The empty string is a valid label value.
VALUES = st.one_of(
    st.sampled_from(["", "web", "prod", "v1.2", "a_b-c"]),
    st.from_regex(r"\A([A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?)?\Z"),
)
LABELS = st.dictionaries(KEYS, VALUES, max_size=5)


@st.composite
def requirements(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]))
    req: dict[str, Any] = {"key": draw(KEYS), "operator": op}
    if op in ("In", "NotIn"):
        req["values"] = draw(st.lists(VALUES, min_size=1, max_size=4))
    elif draw(st.booleans()):
        req["values"] = []  # allowed for Exists and DoesNotExist, as an absent list
    return req


@st.composite
def selectors(draw: st.DrawFn) -> dict[str, Any]:
    selector: dict[str, Any] = {}
    if draw(st.booleans()):
        selector["matchLabels"] = draw(st.dictionaries(KEYS, VALUES, max_size=3))
    if draw(st.booleans()):
        selector["matchExpressions"] = draw(st.lists(requirements(), max_size=4))
    return selector


def query_string(selector: dict[str, Any]) -> str:
    """The labelSelector query parameter for a LabelSelector, as apimachinery writes it."""
    clauses = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for req in selector.get("matchExpressions") or []:
        key, op, values = req["key"], req["operator"], sorted(set(req.get("values") or []))
        if op == "In":
            clauses.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            clauses.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            clauses.append(key)
        else:
            clauses.append(f"!{key}")
    return ",".join(clauses)


def test_query_string_of_known_selectors() -> None:
    """The conversion the fuzzing relies on, on rows whose strings are known."""
    selector = {
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "x", "operator": "NotIn", "values": [""]},
            {"key": "y", "operator": "Exists"},
            {"key": "z", "operator": "DoesNotExist", "values": []},
        ],
    }
    assert query_string(selector) == "a=1,b=2,env in (dev,prod),x notin (),y,!z"
    assert query_string({}) == ""


@settings(max_examples=1000, deadline=None)
@given(selectors(), LABELS)
def test_operator_and_api_server_agree(selector: dict[str, Any], labels: dict[str, str]) -> None:
    validate(selector)  # every generated selector is well-formed
    ours = matches(selector, labels)
    theirs = labels_match(parse_label_selector(query_string(selector)), labels)
    assert ours == theirs, query_string(selector)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(selectors(), st.lists(LABELS, min_size=1, max_size=8))
def test_operator_and_a_listing_select_the_same_objects(
    selector: dict[str, Any], label_sets: list[dict[str, str]]
) -> None:
    kube = FakeKube()
    for i, labels in enumerate(label_sets):
        kube.create(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{i}", "labels": labels}}
        )
    listed = {ns["metadata"]["name"] for ns in kube.list("namespaces", label_selector=query_string(selector))}
    expected = {f"ns-{i}" for i, labels in enumerate(label_sets) if matches(selector, labels)}
    assert listed == expected, query_string(selector)
