"""The PrometheusConfig CRD against what generation reads: every PrometheusConfig and monitor in the
golden inputs is valid under its CRD and survives structural pruning intact (an API server drops the
fields a structural schema does not declare), and bad values of the issue-10 fields are refused."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.examples import manifests as m

GOLDEN = Path(__file__).resolve().parents[1] / "config_operator" / "golden"
KINDS = ("PrometheusConfig", "ServiceMonitor", "PodMonitor")


def _golden_objects() -> list[tuple[str, dict[str, Any]]]:
    """Every PrometheusConfig and monitor of the golden inputs, except the monitors a case's
    warnings.txt shows skipped: those are malformed on purpose."""
    out = []
    for path in sorted(GOLDEN.glob("*/input.yaml")):
        warnings = path.with_name("warnings.txt")
        skipped = warnings.read_text() if warnings.exists() else ""
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") not in KINDS:
                continue
            meta = doc["metadata"]
            doc = {**doc, "metadata": {**meta, "namespace": meta.get("namespace", "default")}}
            if f"skipped {doc['kind']} {doc['metadata']['namespace']}/{meta['name']}:" in skipped:
                continue
            out.append((f"{path.parent.name}:{doc['kind']}/{meta['name']}", doc))
    return out


OBJECTS = _golden_objects()
CRDS = m.crds()


def pruned(value: Any, schema: dict[str, Any]) -> Any:
    """``value`` as an API server stores it under a structural ``schema``: undeclared fields dropped,
    except below x-kubernetes-preserve-unknown-fields."""
    if isinstance(value, dict) and schema.get("type") == "object":
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields") is True
        out = {}
        for k, v in value.items():
            if props is not None and k in props:
                out[k] = pruned(v, props[k])
            elif isinstance(extra, dict):
                out[k] = pruned(v, extra)
            elif keep_unknown or (props is None and extra is None):
                out[k] = v
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [pruned(v, schema["items"]) for v in value]
    return value


def _schema(body: dict[str, Any]) -> dict[str, Any]:
    crd = CRDS[(body["apiVersion"], body["kind"])]
    (version,) = crd["spec"]["versions"]
    return dict(version["schema"]["openAPIV3Schema"])


def test_the_golden_inputs_hold_every_kind() -> None:
    assert {kind for _, doc in OBJECTS for kind in [doc["kind"]]} == set(KINDS)


@pytest.mark.parametrize(("where", "body"), OBJECTS, ids=[w for w, _ in OBJECTS])
def test_golden_objects_are_valid_and_survive_pruning(where: str, body: dict[str, Any]) -> None:
    assert m.cr_errors(body, CRDS) == []
    assert pruned(copy.deepcopy(body), _schema(body)) == body


def test_pruning_drops_an_undeclared_field() -> None:
    """The check above can fail: a field the CRD does not declare is lost."""
    (_, pc) = next((w, d) for w, d in OBJECTS if d["kind"] == "PrometheusConfig")
    body = copy.deepcopy(pc)
    body["spec"]["shardz"] = 3
    assert "shardz" not in pruned(copy.deepcopy(body), _schema(body))["spec"]


BAD = [
    ("shards", 0, "shards"),
    ("shards", "3", "shards"),
    ("enforcedNamespaceLabel", "bad-label", "enforcedNamespaceLabel"),
    ("replicaExternalLabelName", "bad-label", "replicaExternalLabelName"),
    ("enforcedSampleLimit", -1, "enforcedSampleLimit"),
    ("enforcedBodySizeLimit", "10 megs", "enforcedBodySizeLimit"),
    ("scrapeProtocols", ["Gopher"], "scrapeProtocols"),
    ("excludedFromEnforcement", [{"resource": "pods", "namespace": "a"}], "excludedFromEnforcement"),
    ("excludedFromEnforcement", [{"resource": "podmonitors"}], "excludedFromEnforcement"),
    ("ignoreNamespaceSelectors", "yes", "ignoreNamespaceSelectors"),
    ("remoteWrite", [{"name": "no-url"}], "remoteWrite"),
    ("remoteWrite", [{"url": "http://a", "remoteTimeout": "soon"}], "remoteWrite"),
    ("remoteWrite", [{"url": "http://a", "basicAuth": {"password": {"name": "s"}}}], "remoteWrite"),
    ("remoteWrite", [{"url": "http://a", "tlsConfig": {"minVersion": "SSL3"}}], "remoteWrite"),
]


@pytest.mark.parametrize(("field", "value", "expected"), BAD, ids=[f"{f}={v!r}" for f, v, _ in BAD])
def test_bad_issue10_fields_are_refused_by_the_crd(field: str, value: Any, expected: str) -> None:
    (_, pc) = next((w, d) for w, d in OBJECTS if d["kind"] == "PrometheusConfig")
    body = copy.deepcopy(pc)
    body["spec"][field] = value
    errors = m.cr_errors(body, CRDS)
    assert any(e.startswith(f"spec.{expected}") for e in errors), errors
