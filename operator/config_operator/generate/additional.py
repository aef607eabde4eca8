"""``spec.additionalScrapeConfigs``: raw scrape configs from a Secret key, through the Lookup. No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from config_operator.generate.common import InvalidConfig
from config_operator.generate.lookup import Lookup, UnreadableValue


def additional_scrape_configs(
    spec: Mapping[str, Any], namespace: str, lookup: Lookup
) -> list[dict[str, Any]]:
    """The jobs in the Secret key that ``spec.additionalScrapeConfigs`` names, in the PrometheusConfig's namespace."""
    ref = spec.get("additionalScrapeConfigs")
    if ref is None:
        return []
    if (
        not isinstance(ref, Mapping)
        or not isinstance(ref.get("name"), str)
        or not isinstance(ref.get("key"), str)
    ):
        raise InvalidConfig("spec.additionalScrapeConfigs needs 'name' and 'key' of a Secret")
    name, key = ref["name"], ref["key"]
    where = f"spec.additionalScrapeConfigs: Secret {namespace}/{name}"
    if lookup.secret(namespace, name) is None:
        raise InvalidConfig(f"{where} not found")
    try:
        raw = lookup.secret_value(namespace, name, key)
    except UnreadableValue as exc:
        raise InvalidConfig(str(exc)) from None
    if raw is None:
        raise InvalidConfig(f"{where} has no key {key!r}")
    try:
        parsed = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidConfig(f"{where} key {key!r}: not valid YAML{at}") from None
    if parsed is None:
        return []
    if not isinstance(parsed, list) or not all(
        isinstance(j, dict) and isinstance(j.get("job_name"), str) for j in parsed
    ):
        raise InvalidConfig(f"{where} key {key!r}: must be a list of scrape configs, each with a job_name")
    return parsed
