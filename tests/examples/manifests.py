"""Loading the example manifests, and validating custom resources against their CRDs' schemas."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# Folders that hold nothing but Kubernetes manifests (every YAML document must be an object). Elsewhere
# (Helm values, Prometheus configs) only the documents that are objects count as manifests.
MANIFEST_DIRS = (EXAMPLES / "kubernetes",)
CUSTOM_GROUPS = ("reloader.dev", "monitoring.coreos.com")


@dataclass(frozen=True)
class Doc:
    """One YAML document of an example file."""

    path: Path
    index: int
    body: Any

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}#{self.index}"

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", "")) if isinstance(self.body, dict) else ""


def yaml_files() -> list[Path]:
    """Every YAML file under examples/, sorted."""
    return sorted(p for p in EXAMPLES.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def documents() -> Iterator[Doc]:
    """Every non-empty YAML document under examples/."""
    for path in yaml_files():
        for i, body in enumerate(yaml.safe_load_all(path.read_text())):
            if body is not None:
                yield Doc(path, i, body)


def is_object(body: Any) -> bool:
    """A Kubernetes object: a mapping with apiVersion, kind and metadata.name."""
    return (
        isinstance(body, dict)
        and isinstance(body.get("apiVersion"), str)
        and isinstance(body.get("kind"), str)
        and isinstance(body.get("metadata"), dict)
        and bool(body["metadata"].get("name"))
    )


def in_manifest_dir(path: Path) -> bool:
    return any(path.is_relative_to(d) for d in MANIFEST_DIRS)


def manifests() -> list[Doc]:
    """The Kubernetes objects among the example documents."""
    return [d for d in documents() if is_object(d.body)]


def is_custom(body: dict[str, Any]) -> bool:
    return str(body["apiVersion"]).split("/")[0] in CUSTOM_GROUPS


def crds() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> CustomResourceDefinition, from examples/kubernetes/operator/."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in manifests():
        if doc.kind != "CustomResourceDefinition":
            continue
        spec = doc.body["spec"]
        for version in spec["versions"]:
            out[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = doc.body
    return out


def cr_errors(body: dict[str, Any], definitions: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    """Why the API server would refuse this custom resource under its CRD's schema; [] if it accepts it."""
    key = (str(body.get("apiVersion")), str(body.get("kind")))
    if key not in definitions:
        return [f"no CRD serves {key[0]} {key[1]}"]
    crd = definitions[key]
    (version,) = [v for v in crd["spec"]["versions"] if f"{crd['spec']['group']}/{v['name']}" == key[0]]
    schema = version["schema"]["openAPIV3Schema"]
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    ]


def structural_errors(schema: dict[str, Any], path: str = "") -> list[str]:
    """The parts of an openAPIV3Schema that break Kubernetes' structural-schema rules we rely on:
    every node has a type (unless it preserves unknown fields or is int-or-string), and properties sit only
    on objects."""
    found: list[str] = []
    # An int-or-string node (x-kubernetes-int-or-string) is the one typed node allowed no type.
    untyped_ok = schema.get("x-kubernetes-preserve-unknown-fields") or schema.get(
        "x-kubernetes-int-or-string"
    )
    if "type" not in schema and not untyped_ok:
        found.append(f"{path or '<root>'}: no type")
    if "properties" in schema and schema.get("type") != "object":
        found.append(f"{path}: properties on a non-object")
    for name, sub in (schema.get("properties") or {}).items():
        found += structural_errors(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        found += structural_errors(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        found += structural_errors(schema["additionalProperties"], f"{path}{{}}")
    return found
