"""``spec.alerting``: the alertmanagers Prometheus sends alerts to. No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from config_operator.generate.common import SCHEMES, InvalidConfig, parse_duration_ms, sorted_deep


def alerting_section(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or set(value) - {"alertmanagers"}:
        raise InvalidConfig("spec.alerting must be a mapping with only 'alertmanagers'")
    entries = value.get("alertmanagers") or []
    if not isinstance(entries, list):
        raise InvalidConfig("spec.alerting.alertmanagers must be a list")
    out = []
    for i, entry in enumerate(entries):
        where = f"spec.alerting.alertmanagers[{i}]"
        if not isinstance(entry, Mapping):
            raise InvalidConfig(f"{where} must be a mapping")
        if "static" not in entry:
            # Anything else is a Prometheus alertmanager_config, passed through as given.
            out.append(sorted_deep(entry))
            continue
        extra = sorted(set(entry) - {"static", "scheme", "pathPrefix", "apiVersion", "timeout"})
        if extra:
            raise InvalidConfig(f"{where}: unknown field(s) next to 'static': {', '.join(extra)}")
        targets = entry["static"]
        if not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets):
            raise InvalidConfig(f"{where}.static must be a list of host:port strings")
        am: dict[str, Any] = {}
        if entry.get("pathPrefix") is not None:
            am["path_prefix"] = str(entry["pathPrefix"])
        if entry.get("scheme") is not None:
            scheme = str(entry["scheme"]).lower()
            if scheme not in SCHEMES:
                raise InvalidConfig(f"{where}.scheme: unknown scheme {entry['scheme']!r}")
            am["scheme"] = scheme
        if entry.get("timeout") is not None:
            try:
                parse_duration_ms(entry["timeout"])
            except ValueError as exc:
                raise InvalidConfig(f"{where}.timeout: {exc}") from None
            am["timeout"] = entry["timeout"]
        if entry.get("apiVersion") is not None:
            if entry["apiVersion"] not in ("v1", "v2"):
                raise InvalidConfig(f"{where}.apiVersion must be v1 or v2")
            am["api_version"] = entry["apiVersion"]
        am["static_configs"] = [{"targets": list(targets)}]
        out.append(am)
    return {"alertmanagers": out}
