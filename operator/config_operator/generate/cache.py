"""Serialized scrape jobs, kept between generations, so one changed monitor re-renders one monitor. No I/O.

Which monitors are selected is remembered the same way, by the monitor's version, the selectors, and
the labels of its namespace.

A monitor's jobs depend on the monitor (its uid and resourceVersion name its content), on a *context*
(whatever of the PrometheusConfig the job builder reads: the whole spec, canonically encoded), and on
the Secrets and ConfigMaps the builder reads through the Lookup (their versions are recorded as it
reads them and checked on every later use). When all three match, the YAML written last time is
used as is; otherwise the jobs are built and written again. A monitor without a resourceVersion
(``render``'s input files) is always built afresh.

``compress`` gzips the config the same way, resuming from the part the last config shared with it.

One ``JobCache`` serves one PrometheusConfig (its context differs from another's); ``sweep`` forgets
the monitors that the last generation did not use, so deleted monitors do not pile up.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from config_operator.generate.common import Reject
from config_operator.generate.deflate import IncrementalGzip
from config_operator.generate.emit import Emitter
from config_operator.generate.lookup import Lookup, Reference
from config_operator.resources import ConfigMap, Secret

# The emitter remembers scalars and lines; monitors come and go, so past this many (a generous
# multiple of what the cached monitors use, about 6 per monitor) it starts afresh.
EMITTER_MEMO_BASE = 50_000
EMITTER_MEMO_PER_MONITOR = 20


@dataclass(frozen=True)
class Fragment:
    """What one monitor contributes to the config."""

    yaml: bytes
    """Its jobs, as items of the ``scrape_configs`` sequence (empty when rejected)."""
    job_names: tuple[str, ...]
    rejected: str | None = None
    """Why the monitor was skipped, or None."""
    tls_files: Mapping[str, str] = field(default_factory=dict)
    """The TLS assets its jobs read (file name -> content), for the tls-assets Secrets."""
    warnings: tuple[str, ...] = ()
    """What the version gates left out of its jobs, one line each."""


@dataclass(frozen=True)
class Built:
    """What a builder gives for one accepted monitor."""

    jobs: list[dict[str, Any]]
    tls_files: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


Build = Callable[[Lookup], Built]
"""Builds a monitor's jobs, reading Secrets and ConfigMaps only through the Lookup given; may raise Reject."""


@dataclass
class _Selection:
    version: tuple[str, str]
    selection: Hashable
    namespace_labels: Mapping[str, str]
    selected: bool
    used: int


@dataclass
class _Entry:
    version: tuple[str, str]
    context: Hashable
    dependencies: tuple[tuple[Reference, str], ...]
    fragment: Fragment
    used: int


class JobCache:
    """Fragments of one PrometheusConfig's monitors by (kind, namespace, name)."""

    def __init__(self) -> None:
        self.emitter = Emitter()
        self._gzip = IncrementalGzip()
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        self._selections: dict[tuple[str, str, str], _Selection] = {}
        self._round = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def selected(
        self,
        kind: str,
        identity: tuple[str, str],
        monitor: Mapping[str, Any],
        selection: Hashable,
        namespace_labels: Mapping[str, str],
        decide: Callable[[], bool],
    ) -> bool:
        """Whether the monitor is selected: ``decide()``, or its last answer when neither the monitor,
        the ``selection`` (the selectors and the PrometheusConfig's namespace) nor the labels of the
        monitor's namespace changed."""
        key = (kind, *identity)
        version = _monitor_version(monitor)
        entry = self._selections.get(key)
        if (
            entry is not None
            and version[1]
            and entry.version == version
            and entry.selection == selection
            and entry.namespace_labels == namespace_labels
        ):
            entry.used = self._round
            return entry.selected
        selected = decide()
        if version[1]:
            self._selections[key] = _Selection(version, selection, namespace_labels, selected, self._round)
        return selected

    def fragment(
        self,
        kind: str,
        identity: tuple[str, str],
        monitor: Mapping[str, Any],
        context: Hashable,
        lookup: Lookup,
        build: Build,
    ) -> Fragment:
        """The fragment of ``monitor`` (``identity``: its namespace and name), from the cache when
        nothing it depends on changed."""
        key = (kind, *identity)
        version = _monitor_version(monitor)
        entry = self._entries.get(key)
        if (
            entry is not None
            and version[1]
            and entry.version == version
            and entry.context == context
            and (
                not entry.dependencies
                or all(_version(ref, lookup) == seen for ref, seen in entry.dependencies)
            )
        ):
            entry.used = self._round
            self.hits += 1
            return entry.fragment
        self.misses += 1
        recording = _Recording(lookup)
        try:
            built = build(recording)
        except Reject as exc:
            fragment = Fragment(b"", (), str(exc))
        else:
            jobs = built.jobs
            fragment = Fragment(
                self.emitter.dump(jobs) if jobs else b"",
                tuple(j["job_name"] for j in jobs),
                tls_files=dict(built.tls_files),
                warnings=built.warnings,
            )
        if version[1]:
            self._entries[key] = _Entry(
                version, context, tuple(sorted(recording.used.items())), fragment, self._round
            )
        return fragment

    def compress(self, config: bytes) -> bytes:
        """``compress(config)``, re-compressing only from where it differs from the last config."""
        return self._gzip.compress(config)

    def sweep(self) -> None:
        """Forget the monitors not used since the last sweep; call once per generation."""
        self._entries = {k: e for k, e in self._entries.items() if e.used == self._round}
        self._selections = {k: e for k, e in self._selections.items() if e.used == self._round}
        self._round += 1
        if self.emitter.memo_size() > EMITTER_MEMO_BASE + EMITTER_MEMO_PER_MONITOR * len(self._entries):
            self.emitter = Emitter()


class _Recording(Lookup):
    """A Lookup that reads through ``parent`` and notes the version of every object it was asked for."""

    def __init__(self, parent: Lookup) -> None:
        super().__init__()
        self._parent = parent
        self.used: dict[Reference, str] = {}

    def secret(self, namespace: str, name: str) -> Secret | None:
        found = self._parent.secret(namespace, name)
        self.used[Reference("Secret", namespace, name)] = _object_version(found)
        return found

    def configmap(self, namespace: str, name: str) -> ConfigMap | None:
        found = self._parent.configmap(namespace, name)
        self.used[Reference("ConfigMap", namespace, name)] = _object_version(found)
        return found


def _monitor_version(monitor: Mapping[str, Any]) -> tuple[str, str]:
    meta = monitor.get("metadata") or {}
    return (str(meta.get("uid") or ""), str(meta.get("resourceVersion") or ""))


def _version(ref: Reference, lookup: Lookup) -> str:
    # Asking the Lookup again also records the reference for this generation (what to watch).
    if ref.kind == "Secret":
        return _object_version(lookup.secret(ref.namespace, ref.name))
    return _object_version(lookup.configmap(ref.namespace, ref.name))


def _object_version(obj: Mapping[str, Any] | None) -> str:
    if obj is None:
        return "absent"
    meta = obj.get("metadata") or {}
    rv = meta.get("resourceVersion")
    if rv:
        return f"{meta.get('uid') or ''}/{rv}"
    # Objects from files have no resourceVersion: their content is their version.
    content = {k: obj.get(k) for k in ("data", "stringData", "binaryData")}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()
