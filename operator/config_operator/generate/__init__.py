"""Config generation: a PrometheusConfig plus what it selects become prometheus.yaml. Pure, no I/O.

The package is split by concern, and its modules import only downward in this order:

- ``common``: errors, durations, label names, YAML output;
- ``lookup``: the one seam for Secret and ConfigMap values;
- ``relabel``: relabel configs;
- ``versions``: spec.version and the gates on fields a Prometheus version does not accept;
- ``spec``: the PrometheusConfig's own fields and their validation;
- ``selection``: which monitors a PrometheusConfig selects;
- ``rules``: PrometheusRules as rule files, split over ConfigMaps;
- ``globals``: the ``global`` section and ``rule_files``;
- ``scrape_classes``: spec.scrapeClasses and their merge into monitors;
- ``assets``: credentials and TLS files from Secrets and ConfigMaps, and the tls-assets Secrets;
- ``endpoints``: ServiceMonitor and PodMonitor endpoints as scrape jobs;
- ``probes``: Probes as scrape jobs;
- ``alerting``: the alertmanagers (static, or a Service found by discovery) and alert relabelings;
- ``additional``: ``additionalScrapeConfigs``;
- ``cache``: serialized jobs kept between generations (``load`` and ``emit`` read and write YAML fast);
- ``config``: ``generate()``, which puts them together.

This module only re-exports the public names.
"""

from config_operator.generate.assets import CERTS_DIR, shard_tls_assets, tls_assets_secret_name
from config_operator.generate.cache import JobCache
from config_operator.generate.common import (
    SECRET_KEY,
    InvalidConfig,
    Rejected,
    dump_yaml,
    parse_duration_ms,
    sanitize_label_name,
)
from config_operator.generate.config import Generated, compress, config_hash, generate, secret_name
from config_operator.generate.endpoints import (
    ENDPOINT_FIELDS,
    POD_METRICS_ENDPOINT_FIELDS,
    POD_MONITOR_FIELDS,
    SERVICE_MONITOR_ENDPOINT_FIELDS,
    SERVICE_MONITOR_FIELDS,
)
from config_operator.generate.lookup import Lookup, Reference, UnreadableValue
from config_operator.generate.relabel import relabel_config
from config_operator.generate.rules import RuleConfigMap, RuleFiles
from config_operator.generate.selection import may_select
from config_operator.generate.spec import SPEC_FIELDS

__all__ = [
    "CERTS_DIR",
    "ENDPOINT_FIELDS",
    "POD_METRICS_ENDPOINT_FIELDS",
    "POD_MONITOR_FIELDS",
    "SECRET_KEY",
    "SERVICE_MONITOR_ENDPOINT_FIELDS",
    "SERVICE_MONITOR_FIELDS",
    "SPEC_FIELDS",
    "Generated",
    "InvalidConfig",
    "JobCache",
    "Lookup",
    "Reference",
    "Rejected",
    "RuleConfigMap",
    "RuleFiles",
    "UnreadableValue",
    "compress",
    "config_hash",
    "dump_yaml",
    "generate",
    "may_select",
    "parse_duration_ms",
    "relabel_config",
    "sanitize_label_name",
    "secret_name",
    "shard_tls_assets",
    "tls_assets_secret_name",
]
