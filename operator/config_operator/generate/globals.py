"""The ``global`` section and ``rule_files`` of prometheus.yaml. No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from config_operator.generate.common import LABEL_NAME, InvalidConfig, parse_duration_ms
from config_operator.generate.spec import DEFAULT_EVALUATION_INTERVAL, duration_field


def global_block(spec: Mapping[str, Any], interval: str) -> dict[str, Any]:
    block: dict[str, Any] = {
        "evaluation_interval": duration_field(spec, "evaluationInterval", DEFAULT_EVALUATION_INTERVAL),
        "scrape_interval": interval,
    }
    if spec.get("scrapeTimeout") is not None:
        timeout = duration_field(spec, "scrapeTimeout", "")
        if parse_duration_ms(timeout) > parse_duration_ms(interval):
            raise InvalidConfig(
                f"spec.scrapeTimeout {timeout!r} is greater than spec.scrapeInterval {interval!r}"
            )
        block["scrape_timeout"] = timeout
    labels = spec.get("externalLabels")
    if labels is not None:
        if not isinstance(labels, Mapping):
            raise InvalidConfig("spec.externalLabels must be a mapping of label names to values")
        for k, v in labels.items():
            if not isinstance(k, str) or not LABEL_NAME.match(k):
                raise InvalidConfig(f"spec.externalLabels: {k!r} is not a valid label name")
            if not isinstance(v, str):
                raise InvalidConfig(f"spec.externalLabels[{k}] must be a string")
        # $(VAR) values are left alone: the reloader expands them in each pod.
        block["external_labels"] = {k: labels[k] for k in sorted(labels)}
    return block


def rule_files(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidConfig("spec.ruleFiles must be a list of non-empty strings")
    return list(value)
