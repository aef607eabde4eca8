"""The ``global`` section and ``rule_files`` of prometheus.yaml. No I/O.

Beyond intervals and external labels, the PrometheusConfig-wide fields prometheus-operator writes here:
scrape protocols, the global limits (see ``limits``), and the query and scrape-failure log files, each
left out (with a warning) for a ``spec.version`` that predates it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from config_operator.generate.common import LABEL_NAME, InvalidConfig, parse_duration_ms
from config_operator.generate.gate import Gates
from config_operator.generate.limits import enforced_limits, global_limits
from config_operator.generate.spec import DEFAULT_EVALUATION_INTERVAL, duration_field
from config_operator.resources import ObjectKey

DEFAULT_PROMETHEUS_LABEL = "prometheus"
DEFAULT_REPLICA_LABEL = "prometheus_replica"


def global_block(spec: Mapping[str, Any], interval: str, pc_key: ObjectKey, gates: Gates) -> dict[str, Any]:
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
    protocols = scrape_protocols(spec, gates)
    if protocols:
        block["scrape_protocols"] = protocols
    block["external_labels"] = external_labels(spec, pc_key, gates)
    block.update(global_limits(enforced_limits(spec), gates))
    for field, key, minimum in (
        ("scrapeFailureLogFile", "scrape_failure_log_file", "2.55.0"),
        ("queryLogFile", "query_log_file", "2.16.0"),
    ):
        path = _log_file(spec, field)
        if path is not None and gates.allows(minimum, f"global.{key}"):
            block[key] = path
    return block


# Prometheus's scrape protocol names (PrometheusText1.0.0 arrived in 3.0).
SCRAPE_PROTOCOLS = frozenset(
    {
        "PrometheusProto",
        "OpenMetricsText0.0.1",
        "OpenMetricsText1.0.0",
        "PrometheusText0.0.4",
        "PrometheusText1.0.0",
    }
)
# Where prometheus-operator mounts a volume for log files given as bare file names.
DEFAULT_LOG_DIRECTORY = "/var/log/prometheus"


def scrape_protocols(spec: Mapping[str, Any], gates: Gates) -> list[str]:
    """``spec.scrapeProtocols`` as Prometheus takes them (2.49+), in the given order of preference."""
    value = spec.get("scrapeProtocols")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidConfig("spec.scrapeProtocols must be a list of scrape protocol names")
    unknown = sorted(set(value) - SCRAPE_PROTOCOLS)
    if unknown:
        raise InvalidConfig(
            f"spec.scrapeProtocols: unknown protocol(s) {', '.join(unknown)} (want {', '.join(sorted(SCRAPE_PROTOCOLS))})"
        )
    if len(set(value)) != len(value):
        raise InvalidConfig("spec.scrapeProtocols lists a protocol twice")
    if not value or not gates.allows("2.49.0", "global.scrape_protocols"):
        return []
    kept = [
        p
        for p in value
        if p != "PrometheusText1.0.0" or gates.allows("3.0.0", "global.scrape_protocols PrometheusText1.0.0")
    ]
    return kept


def _log_file(spec: Mapping[str, Any], field: str) -> str | None:
    value = spec.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidConfig(f"spec.{field} must be a file path")
    # A bare file name goes to prometheus-operator's log volume; a path is used as it is.
    return value if "/" in value else f"{DEFAULT_LOG_DIRECTORY}/{value}"


def replica_label(spec: Mapping[str, Any]) -> str:
    """The replica external label's name; ``""`` when ``spec.replicaExternalLabelName`` turns it off."""
    return _label_name_field(spec, "replicaExternalLabelName", DEFAULT_REPLICA_LABEL)


def external_labels(spec: Mapping[str, Any], pc_key: ObjectKey, gates: Gates) -> dict[str, str]:
    """prometheus-operator's external labels: ``prometheus: <namespace>/<name>`` and
    ``prometheus_replica: $(POD_NAME)`` (either renamed, or left out with ``""``), then
    ``spec.externalLabels``, which may not override those two. Sorted by name."""
    labels: dict[str, str] = {}
    name = _label_name_field(spec, "prometheusExternalLabelName", DEFAULT_PROMETHEUS_LABEL)
    if name:
        labels[name] = f"{pc_key.namespace}/{pc_key.name}"
    replica = replica_label(spec)
    if replica:
        # Expanded by config-reloader in each pod: one value per replica.
        labels[replica] = "$(POD_NAME)"
    user = spec.get("externalLabels")
    if user is not None:
        if not isinstance(user, Mapping):
            raise InvalidConfig("spec.externalLabels must be a mapping of label names to values")
        for k, v in user.items():
            if not isinstance(k, str) or not LABEL_NAME.match(k):
                raise InvalidConfig(f"spec.externalLabels: {k!r} is not a valid label name")
            if not isinstance(v, str):
                raise InvalidConfig(f"spec.externalLabels[{k}] must be a string")
        for k in sorted(user):
            if k in labels:
                gates.warn(f"spec.externalLabels[{k}]: ignored, {k!r} is a reserved external label")
                continue
            # $(VAR) values are left alone: the reloader expands them in each pod.
            labels[k] = user[k]
    return {k: labels[k] for k in sorted(labels)}


def with_replica_labeldrop(alerting: dict[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    """The alerting section with prometheus-operator's first alert relabeling: drop the replica label,
    so that Alertmanager deduplicates the alerts of a Prometheus's replicas."""
    replica = replica_label(spec)
    if not replica:
        return alerting
    # A label name has no regex metacharacters, so it is its own literal pattern.
    drop = {"action": "labeldrop", "regex": replica}
    rest = {k: v for k, v in alerting.items() if k != "alert_relabel_configs"}
    return {"alert_relabel_configs": [drop, *alerting.get("alert_relabel_configs", [])], **rest}


def _label_name_field(spec: Mapping[str, Any], field: str, default: str) -> str:
    value = spec.get(field)
    if value is None:
        return default
    if not isinstance(value, str) or (value and not LABEL_NAME.match(value)):
        raise InvalidConfig(f'spec.{field} must be a label name, or "" to leave the label out')
    return value


def rule_files(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidConfig("spec.ruleFiles must be a list of non-empty strings")
    return list(value)
