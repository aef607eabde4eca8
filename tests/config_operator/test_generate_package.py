"""The generator package's structure (imports only run downward) and its Lookup seam."""

from __future__ import annotations

import ast
import base64
from pathlib import Path

import pytest

from config_operator.generate import Lookup, Reference, UnreadableValue

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "config_operator" / "generate"
# The layers, lowest first: a module may import only modules before it in this list.
LAYERS = [
    "common",
    "deflate",
    "load",
    "emit",
    "lookup",
    "relabel",
    "versions",
    "spec",
    "gate",
    "selection",
    "rules",
    "limits",
    "globals",
    "scrape_classes",
    "assets",
    "targets",
    "endpoints",
    "tenancy",
    "probes",
    "alerting",
    "additional",
    "sharding",
    "remote_write",
    "cache",
    "config",
]


def _package_imports(path: Path) -> set[str]:
    prefix = "config_operator.generate."
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(prefix):
            found.add(node.module.removeprefix(prefix).split(".")[0])
    return found


def test_every_module_is_in_a_layer() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules <= set(LAYERS), f"add {sorted(modules - set(LAYERS))} to LAYERS, in import order"


@pytest.mark.parametrize("module", LAYERS)
def test_imports_run_downward(module: str) -> None:
    path = PACKAGE / f"{module}.py"
    if not path.exists():
        pytest.skip(f"{module}.py is not in the package")
    allowed = set(LAYERS[: LAYERS.index(module)])
    upward = _package_imports(path) - allowed
    assert not upward, f"{module} imports {sorted(upward)}, which sit above it"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


SECRETS = [
    {"metadata": {"namespace": "ns", "name": "auth"}, "data": {"user": _b64("alice"), "bad": "%%%"}},
    {"metadata": {"namespace": "ns", "name": "both"}, "data": {"k": _b64("old")}, "stringData": {"k": "new"}},
]
CONFIGMAPS = [
    {
        "metadata": {"namespace": "ns", "name": "ca"},
        "data": {"ca.crt": "PEM"},
        "binaryData": {"b": _b64("bin")},
    }
]


@pytest.mark.parametrize(
    ("kind", "namespace", "name", "key", "want"),
    [
        ("Secret", "ns", "auth", "user", "alice"),
        ("Secret", "ns", "auth", "missing", None),
        ("Secret", "ns", "nope", "user", None),
        ("Secret", "other", "auth", "user", None),
        ("Secret", "ns", "both", "k", "new"),  # stringData wins, as the API server merges it
        ("ConfigMap", "ns", "ca", "ca.crt", "PEM"),
        ("ConfigMap", "ns", "ca", "b", "bin"),
        ("ConfigMap", "ns", "ca", "missing", None),
        ("ConfigMap", "ns", "nope", "ca.crt", None),
    ],
)
def test_lookup_values(kind: str, namespace: str, name: str, key: str, want: str | None) -> None:
    lookup = Lookup(SECRETS, CONFIGMAPS)  # type: ignore[arg-type]
    read = lookup.secret_value if kind == "Secret" else lookup.configmap_value
    assert read(namespace, name, key) == want
    assert lookup.references == {Reference(kind, namespace, name)}


def test_lookup_names_an_unreadable_value_without_showing_it() -> None:
    lookup = Lookup(SECRETS)  # type: ignore[arg-type]
    with pytest.raises(UnreadableValue, match=r"Secret ns/auth key 'bad'") as info:
        lookup.secret_value("ns", "auth", "bad")
    assert "%%%" not in str(info.value)
