"""``config-operator render``'s logic: YAML manifests in, the operator's prometheus.yaml out, no cluster.

The files hold PrometheusConfig, ServiceMonitor, PodMonitor, PrometheusRule, Probe, Namespace, Secret and
ConfigMap objects, in any order, as multi-document YAML (a ``kind: List`` is unwrapped). Objects without a
namespace land in ``default``, as kubectl would put them. Secrets and ConfigMaps feed the same lookups as
in the cluster (credentials, TLS material, additionalScrapeConfigs). Other kinds are ignored with a
warning, so a whole application manifest can be passed as is; so are, with one line each, a document
with no ``metadata.name`` and an object given a second time (the first one counts). The rule files of
the selected PrometheusRules come back by ConfigMap, and ``write_rule_files`` lays them out as a
Prometheus pod sees them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from config_operator.generate import InvalidConfig, generate
from config_operator.generate.load import load_all
from config_operator.generate.rules import RULES_DIR, RuleFiles
from config_operator.resources import KIND, ObjectKey

DEFAULT_NAMESPACE = "default"
_NAMESPACED = (KIND, "ServiceMonitor", "PodMonitor", "PrometheusRule", "Probe", "Secret", "ConfigMap")


class RenderError(ValueError):
    """The input cannot be rendered; the message is one line naming the file or the cause."""


@dataclass(frozen=True)
class Rendered:
    """The generated prometheus.yaml and one line per skipped monitor or ignored document."""

    text: str
    warnings: tuple[str, ...]
    rules: RuleFiles | None = None
    """The rule files by ConfigMap; None when the PrometheusConfig has no ruleSelector."""


@dataclass
class _Objects:
    by_kind: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {k: [] for k in (*_NAMESPACED, "Namespace")}
    )
    warnings: list[str] = field(default_factory=list)
    seen: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """(kind, namespace, name) -> where it was first given."""


def render_files(paths: Sequence[str], *, name: str | None = None) -> Rendered:
    """The prometheus.yaml the operator would write for the one PrometheusConfig in ``paths``.

    With several PrometheusConfigs, ``name`` (``name`` or ``namespace/name``) picks one. Raises
    RenderError for an unreadable file, bad YAML, or no (or an ambiguous) PrometheusConfig; a malformed
    monitor is only a warning, as the operator skips it too.
    """
    if not paths:
        raise RenderError("no input files given")
    objects = _Objects()
    for path in paths:
        _load(path, objects)
    pc = _pick(objects.by_kind[KIND], name)
    try:
        generated = generate(
            pc,  # type: ignore[arg-type]
            objects.by_kind["ServiceMonitor"],  # type: ignore[arg-type]
            objects.by_kind["PodMonitor"],  # type: ignore[arg-type]
            objects.by_kind["Namespace"],  # type: ignore[arg-type]
            objects.by_kind["Secret"],  # type: ignore[arg-type]
            configmaps=objects.by_kind["ConfigMap"],  # type: ignore[arg-type]
            prometheus_rules=objects.by_kind["PrometheusRule"],  # type: ignore[arg-type]
            probes=objects.by_kind["Probe"],  # type: ignore[arg-type]
        )
    except InvalidConfig as exc:
        raise RenderError(f"PrometheusConfig {ObjectKey.of(pc)}: {exc}") from None
    rejected = [*generated.rejected, *(generated.rules.rejected if generated.rules else ())]
    warnings = [
        *objects.warnings,
        *(f"skipped {r}" for r in rejected),
        *(f"PrometheusConfig {ObjectKey.of(pc)}: {w}" for w in generated.warnings),
    ]
    return Rendered(text=generated.config.decode(), warnings=tuple(warnings), rules=generated.rules)


def write_rule_files(rules: RuleFiles, directory: str | Path) -> list[Path]:
    """Write each ConfigMap's files into ``directory/<configmap>/``, as the config's rule_files
    (``{RULES_DIR}/<configmap>/*.yaml``) expects them with ``directory`` in place of RULES_DIR."""
    written = []
    for cm in rules.config_maps:
        folder = Path(directory) / cm.name
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in cm.data.items():
            path = folder / name
            path.write_text(content)
            written.append(path)
    return written


__all__ = ["RULES_DIR", "RenderError", "Rendered", "render_files", "write_rule_files"]


def _load(path: str, objects: _Objects) -> None:
    try:
        text = Path(path).read_bytes().decode()
    except OSError as exc:
        raise RenderError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RenderError(f"{path}: not UTF-8 text") from None
    try:
        docs = load_all(text)  # yaml.safe_load_all's result, on libyaml
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise RenderError(f"{path}: not valid YAML{at}: {problem}") from None
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        where = f"{path}: document {index + 1}"
        if not isinstance(doc, dict):
            raise RenderError(f"{where}: not a Kubernetes object (a mapping with kind and metadata)")
        items = doc.get("items") if doc.get("kind") == "List" else [doc]
        if not isinstance(items, list):
            raise RenderError(f"{where}: a List needs an items list")
        for obj in items:
            _add(where, obj, objects)


def _add(where: str, obj: Any, objects: _Objects) -> None:
    if not isinstance(obj, dict):
        raise RenderError(f"{where}: not a Kubernetes object (a mapping with kind and metadata)")
    kind = obj.get("kind")
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        # The API server would refuse it; the rest of the input still renders.
        objects.warnings.append(f"{where}: ignored {kind or 'an object'} with no metadata.name")
        return
    if kind not in objects.by_kind:
        objects.warnings.append(f"{where}: ignored {kind or 'an object with no kind'} {meta['name']}")
        return
    if kind in _NAMESPACED and not meta.get("namespace"):
        obj = {**obj, "metadata": {**meta, "namespace": DEFAULT_NAMESPACE}}
    identity = (kind, str(obj["metadata"].get("namespace") or ""), meta["name"])
    if identity in objects.seen:
        name = "/".join(p for p in identity[1:] if p)
        first = objects.seen[identity]
        objects.warnings.append(f"{where}: ignored {kind} {name}, given again (first in {first})")
        return
    objects.seen[identity] = where
    objects.by_kind[kind].append(obj)


def _pick(configs: list[dict[str, Any]], name: str | None) -> dict[str, Any]:
    if name is not None:
        wanted = [
            c
            for c in configs
            if name in (str(ObjectKey.of(c)), ObjectKey.of(c).name)  # "ns/name" or a bare name
        ]
        if not wanted:
            raise RenderError(f"no PrometheusConfig named {name!r} in the input")
        configs = wanted
    if not configs:
        raise RenderError("no PrometheusConfig in the input")
    if len(configs) > 1:
        names = ", ".join(sorted(str(ObjectKey.of(c)) for c in configs))
        raise RenderError(f"several PrometheusConfigs in the input ({names}); pick one with --name")
    return configs[0]
