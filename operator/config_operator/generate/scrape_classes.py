"""``spec.scrapeClasses``: settings an administrator gives every monitor of a class. No I/O.

A monitor names its class in ``spec.scrapeClass``; without one it gets the class marked ``default``
(if any). The merge is prometheus-operator's:
- tlsConfig: the monitor's when it has none; otherwise the monitor's, with the class's caFile, certFile
  and keyFile filling in what the monitor sets neither as a file nor from a Secret;
- authorization: the same, for credentials and credentialsFile;
- attachMetadata and fallbackScrapeProtocol: the monitor's, else the class's;
- relabelings: the class's after the generated ones and before the monitor's; metricRelabelings: the
  class's before the monitor's.

A class's TLS material comes from files in the Prometheus pod only (the class belongs to no monitor's
namespace, so a Secret reference would be ambiguous); a malformed class is a malformed PrometheusConfig.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from config_operator.generate.common import InvalidConfig
from config_operator.generate.relabel import relabel_config

CLASS_FIELDS = frozenset(
    {
        "name",
        "default",
        "tlsConfig",
        "authorization",
        "relabelings",
        "metricRelabelings",
        "attachMetadata",
        "fallbackScrapeProtocol",
    }
)
CLASS_TLS_FIELDS = frozenset(
    {"caFile", "certFile", "keyFile", "serverName", "insecureSkipVerify", "minVersion", "maxVersion"}
)
SCRAPE_PROTOCOLS = (
    "PrometheusProto",
    "OpenMetricsText0.0.1",
    "OpenMetricsText1.0.0",
    "PrometheusText0.0.4",
    "PrometheusText1.0.0",
)


@dataclass(frozen=True)
class ScrapeClass:
    """One class, validated; relabelings already in Prometheus's form."""

    name: str = ""
    tls: Mapping[str, Any] | None = None
    authorization: Mapping[str, Any] | None = None
    relabelings: tuple[dict[str, Any], ...] = ()
    metric_relabelings: tuple[dict[str, Any], ...] = ()
    attach_metadata: Mapping[str, Any] | None = None
    fallback_scrape_protocol: str | None = None


NO_CLASS = ScrapeClass()
"""What a monitor gets without a class (one instance: it is frozen and holds nothing)."""


@dataclass(frozen=True)
class ScrapeClasses:
    """The classes by name, and the default one's name."""

    by_name: Mapping[str, ScrapeClass] = field(default_factory=dict)
    default: str | None = None

    def resolve(self, name: Any) -> ScrapeClass | None:
        """The class a monitor's spec.scrapeClass (None: the default) names; None when it names none
        that exists."""
        if name is None or name == "":
            return self.by_name[self.default] if self.default else NO_CLASS
        return self.by_name.get(name) if isinstance(name, str) else None


def scrape_classes(spec: Mapping[str, Any]) -> ScrapeClasses:
    """spec.scrapeClasses, validated; InvalidConfig names the class and the field."""
    value = spec.get("scrapeClasses")
    if value is None:
        return ScrapeClasses()
    if not isinstance(value, list):
        raise InvalidConfig("spec.scrapeClasses must be a list")
    by_name: dict[str, ScrapeClass] = {}
    default: str | None = None
    for i, item in enumerate(value):
        where = f"spec.scrapeClasses[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
            raise InvalidConfig(f"{where} needs a name")
        name = item["name"]
        unknown = sorted(set(item) - CLASS_FIELDS)
        if unknown:
            raise InvalidConfig(f"{where} ({name}): unsupported field(s): {', '.join(unknown)}")
        if name in by_name:
            raise InvalidConfig(f"{where}: scrape class {name!r} is defined twice")
        if item.get("default") is not None and not isinstance(item["default"], bool):
            raise InvalidConfig(f"{where}.default must be a boolean")
        if item.get("default"):
            if default is not None:
                raise InvalidConfig(f"{where}: more than one default scrape class ({default!r}, {name!r})")
            default = name
        by_name[name] = _scrape_class(item, where)
    return ScrapeClasses(by_name, default)


def _scrape_class(item: Mapping[str, Any], where: str) -> ScrapeClass:
    tls = item.get("tlsConfig")
    if tls is not None:
        if not isinstance(tls, Mapping):
            raise InvalidConfig(f"{where}.tlsConfig must be a mapping")
        unknown = sorted(set(tls) - CLASS_TLS_FIELDS)
        if unknown:
            raise InvalidConfig(
                f"{where}.tlsConfig: unsupported field(s): {', '.join(unknown)} (a class takes files only)"
            )
    auth = item.get("authorization")
    if auth is not None and (not isinstance(auth, Mapping) or set(auth) - {"type", "credentialsFile"}):
        raise InvalidConfig(f"{where}.authorization may hold only type and credentialsFile")
    attach = item.get("attachMetadata")
    if attach is not None and (
        not isinstance(attach, Mapping)
        or set(attach) - {"node"}
        or not isinstance(attach.get("node", False), bool)
    ):
        raise InvalidConfig(f"{where}.attachMetadata may hold only node (a boolean)")
    protocol = item.get("fallbackScrapeProtocol")
    if protocol is not None and protocol not in SCRAPE_PROTOCOLS:
        raise InvalidConfig(f"{where}.fallbackScrapeProtocol: {protocol!r} is not a scrape protocol")
    return ScrapeClass(
        name=item["name"],
        tls=tls,
        authorization=auth,
        relabelings=_relabelings(item, "relabelings", where),
        metric_relabelings=_relabelings(item, "metricRelabelings", where),
        attach_metadata=attach,
        fallback_scrape_protocol=protocol,
    )


def _relabelings(item: Mapping[str, Any], name: str, where: str) -> tuple[dict[str, Any], ...]:
    rules = item.get(name)
    if rules is None:
        return ()
    if not isinstance(rules, list):
        raise InvalidConfig(f"{where}.{name} must be a list")
    out = []
    for i, rule in enumerate(rules):
        try:
            out.append(relabel_config(rule))
        except ValueError as exc:
            raise InvalidConfig(f"{where}.{name}[{i}]: {exc}") from None
    return tuple(out)


# --- the merge -----------------------------------------------------------------------------------------


def merge_tls(tls: Any, cls: ScrapeClass, *, safe: bool) -> Any:
    """The monitor's tlsConfig merged with the class's, or None when neither has one. A non-mapping is
    passed through for the caller to reject. For a PodMonitor (``safe``) an empty tlsConfig counts as
    none; a ServiceMonitor's empty one stays (and gets only the class's files), as in prometheus-operator."""
    if safe and isinstance(tls, Mapping) and not tls:
        tls = None
    if tls is None:
        return dict(cls.tls) if cls.tls is not None else None
    if cls.tls is None or not isinstance(tls, Mapping):
        return tls
    merged = dict(tls)
    for file_field, secret_field in (("caFile", "ca"), ("certFile", "cert"), ("keyFile", "keySecret")):
        if not merged.get(file_field) and not merged.get(secret_field) and cls.tls.get(file_field):
            merged[file_field] = cls.tls[file_field]
    return merged


def merge_authorization(auth: Any, cls: ScrapeClass) -> Any:
    """The monitor's authorization merged with the class's, or None when neither has one."""
    if not auth:
        return dict(cls.authorization) if cls.authorization is not None else None
    if cls.authorization is None or not isinstance(auth, Mapping):
        return auth
    merged = dict(auth)
    if (
        not merged.get("credentials")
        and not merged.get("credentialsFile")
        and cls.authorization.get("credentialsFile")
    ):
        merged["credentialsFile"] = cls.authorization["credentialsFile"]
    return merged
