"""Operator chaos: random changes to the objects the operator reads, random faults of the API server,
and what the operator must have written once it all stops.

Used by tests/config_operator/test_chaos.py (short, in ``make test``) and by its long run
(``make chaos-long``, CHAOS_OPS / CHAOS_SEED in the environment). Everything here is driven by one
``random.Random``, so a failing seed replays the same operations (the timing of the operator does not
replay: it is the point of the test to meet many interleavings).
"""

from __future__ import annotations

import base64
import gzip
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from config_operator import generate as g
from config_operator.resources import MANAGED_BY_LABEL, MANAGED_BY_VALUE
from tests.fakekube import ApiError, FakeKube, Write

PCS = "prometheusconfigs.reloader.dev"
SMS = "servicemonitors.monitoring.coreos.com"
PMS = "podmonitors.monitoring.coreos.com"
LEASES = "leases.coordination.k8s.io"

# "default" holds the Lease and is never deleted; the others come and go, with all they hold.
NAMESPACES = ("team-a", "team-b", "team-c")
PC_NAMES = ("main", "edge")
MONITOR_NAMES = ("web", "api", "db", "cache")
EXTRA_SECRET = "extra-scrape"
EXTRA_KEY = "jobs.yaml"


def _ns(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


@dataclass
class Chaos:
    """Random operations and faults against one fake API server."""

    kube: FakeKube
    rng: random.Random
    faults: bool = True
    lease_faults: bool = False
    """Also slow down Lease renewals past the renew deadline (for runs with leader election)."""
    log: list[str] = field(default_factory=list)
    """What each step did, for a failure message."""

    # -- random objects --------------------------------------------------------------------------------

    def _labels(self) -> dict[str, str]:
        labels = {}
        if self.rng.random() < 0.7:
            labels["team"] = self.rng.choice(["a", "b"])
        if self.rng.random() < 0.5:
            labels["monitoring"] = self.rng.choice(["on", "off"])
        return labels

    def _selector(self, nil_weight: float = 0.15) -> dict[str, Any] | None:
        roll = self.rng.random()
        if roll < nil_weight:
            return None
        if roll < 0.45:
            return {}
        if roll < 0.75:
            return {"matchLabels": {"team": self.rng.choice(["a", "b"])}}
        op = self.rng.choice(["In", "NotIn", "Exists", "DoesNotExist"])
        req: dict[str, Any] = {"key": self.rng.choice(["team", "monitoring"]), "operator": op}
        if op in ("In", "NotIn"):
            req["values"] = self.rng.sample(["a", "b", "on", "off"], self.rng.randint(1, 2))
        return {"matchExpressions": [req]}

    def _pc(self, namespace: str, name: str) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "scrapeInterval": self.rng.choice(["15s", "30s", "1m"]),
            "externalLabels": {"cluster": self.rng.choice(["x", "y"]), "replica": "$(POD_NAME)"},
        }
        for field_name, nil_weight in (
            ("serviceMonitorSelector", 0.1),
            ("serviceMonitorNamespaceSelector", 0.4),
            ("podMonitorSelector", 0.4),
            ("podMonitorNamespaceSelector", 0.4),
        ):
            selector = self._selector(nil_weight)
            if selector is not None:
                spec[field_name] = selector
        if self.rng.random() < 0.3:
            spec["additionalScrapeConfigs"] = {"name": EXTRA_SECRET, "key": EXTRA_KEY}
        if self.rng.random() < 0.05:
            spec["scrapeInterval"] = "soon"  # malformed: Reconciled=False, the last good Secret stays
        if self.rng.random() < 0.03:
            spec["paused"] = True
        return {
            "apiVersion": "reloader.dev/v1alpha1",
            "kind": "PrometheusConfig",
            "metadata": {"name": name, "namespace": namespace, "labels": self._labels()},
            "spec": spec,
        }

    def _endpoint(self) -> dict[str, Any]:
        ep: dict[str, Any] = {"port": self.rng.choice(["web", "metrics", "http"])}
        if self.rng.random() < 0.4:
            ep["interval"] = self.rng.choice(["10s", "30s"])
        if self.rng.random() < 0.08:
            ep.update(interval="10s", scrapeTimeout="20s")  # rejected: the timeout exceeds the interval
        if self.rng.random() < 0.3:
            ep["path"] = self.rng.choice(["/metrics", "/internal/metrics"])
        return ep

    def _monitor(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        endpoints = [self._endpoint() for _ in range(self.rng.randint(1, 2))]
        spec: dict[str, Any] = {"selector": {"matchLabels": {"app": name}}}
        spec["endpoints" if kind == "ServiceMonitor" else "podMetricsEndpoints"] = endpoints
        if self.rng.random() < 0.2:
            spec["namespaceSelector"] = self.rng.choice([{"any": True}, {"matchNames": list(NAMESPACES[:2])}])
        return {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace, "labels": self._labels()},
            "spec": spec,
        }

    def _extra_secret(self, namespace: str) -> dict[str, Any]:
        if self.rng.random() < 0.15:
            text = "- job_name: [unclosed\n"  # not YAML: the PrometheusConfigs using it are invalid
        else:
            n = self.rng.randint(0, 99)
            text = f"- job_name: extra-{n}\n  static_configs:\n  - targets: ['127.0.0.1:{9000 + n}']\n"
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": EXTRA_SECRET, "namespace": namespace},
            "data": {EXTRA_KEY: base64.b64encode(text.encode()).decode()},
        }

    # -- one step --------------------------------------------------------------------------------------

    def step(self) -> None:
        """One random create, update or delete (and, with faults on, maybe a fault)."""
        if self.faults and self.rng.random() < 0.12:
            self.log.append(self._fault())
        roll = self.rng.random()
        namespace = self.rng.choice(NAMESPACES)
        if roll < 0.08:
            self.log.append(self._upsert(_ns(namespace, self._labels())))
        elif roll < 0.11:
            self.log.append(self._delete("namespaces", "", namespace))
        elif roll < 0.30:
            self.log.append(self._upsert(self._pc(namespace, self.rng.choice(PC_NAMES))))
        elif roll < 0.35:
            self.log.append(self._delete(PCS, namespace, self.rng.choice(PC_NAMES)))
        elif roll < 0.60:
            kind = self.rng.choice(["ServiceMonitor", "PodMonitor"])
            self.log.append(self._upsert(self._monitor(kind, namespace, self.rng.choice(MONITOR_NAMES))))
        elif roll < 0.72:
            ref = self.rng.choice([SMS, PMS])
            self.log.append(self._delete(ref, namespace, self.rng.choice(MONITOR_NAMES)))
        elif roll < 0.84:
            self.log.append(self._upsert(self._extra_secret(namespace)))
        elif roll < 0.90:
            self.log.append(self._delete("secrets", namespace, EXTRA_SECRET))
        elif roll < 0.94:
            # Someone deletes the generated Secret: only a resync brings it back.
            self.log.append(self._delete("secrets", namespace, f"prometheus-{self.rng.choice(PC_NAMES)}"))
        else:
            self.log.append(self._relabel_monitor(namespace))

    def _upsert(self, obj: dict[str, Any]) -> str:
        what = f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
        try:
            self.kube.apply(obj)
        except ApiError as exc:
            return f"apply {what}: {exc.code}"
        return f"apply {what}"

    def _delete(self, ref: str, namespace: str, name: str) -> str:
        try:
            self.kube.delete(ref, namespace, name)
        except ApiError as exc:
            return f"delete {ref} {namespace}/{name}: {exc.code}"
        return f"delete {ref} {namespace}/{name}"

    def _relabel_monitor(self, namespace: str) -> str:
        """A label-only change: the monitor may move in or out of a selection, with the same spec."""
        ref = self.rng.choice([SMS, PMS])
        name = self.rng.choice(MONITOR_NAMES)
        try:
            self.kube.patch(ref, namespace, name, {"metadata": {"labels": self._labels() or None}})
        except ApiError as exc:
            return f"relabel {ref} {namespace}/{name}: {exc.code}"
        return f"relabel {ref} {namespace}/{name}"

    def _fault(self) -> str:
        kube, rng = self.kube, self.rng
        choices: list[Callable[[], str]] = [
            lambda: f"drop {kube.drop_watches()} watches",
            lambda: f"expire {kube.expire_watches()} watches",
            lambda: f"hang {kube.hang_watches(next_watches=rng.randint(0, 2))} watches",
            lambda: f"500 x{kube.fail_next(rng.randint(1, 3), code=500).remaining}",
            lambda: f"503 on lists x{kube.fail_next(1, verb='list', code=503).remaining}",
            lambda: f"410 on watches x{kube.fail_next(rng.randint(1, 2), verb='watch', code=410).remaining}",
            lambda: f"500 on watches x{kube.fail_next(1, verb='watch', code=500).remaining}",
            lambda: (
                f"409 on secret updates x{kube.fail_next(rng.randint(1, 6), verb='update', resource='secrets', code=409).remaining}"
            ),
            lambda: (
                f"409 on secret creates x{kube.fail_next(1, verb='create', resource='secrets', code=409).remaining}"
            ),
            lambda: f"500 on status x{kube.fail_next(1, verb='patch', code=500).remaining}",
            lambda: f"500 on events x{kube.fail_next(1, resource='events', code=500).remaining}",
            lambda: (
                f"latency {kube.add_latency(rng.uniform(0.001, 0.03), count=rng.randint(1, 20)).delay_s:.3f}s"
            ),
        ]
        if self.lease_faults:
            choices.append(
                lambda: (
                    f"slow lease renewal {kube.add_latency(rng.uniform(1.0, 4.0), verb='update', resource=LEASES, count=1).delay_s:.1f}s"
                )
            )
        return rng.choice(choices)()


# -- what the operator must have written ------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """For one PrometheusConfig: the config it must have, or None when it is malformed or paused."""

    namespace: str
    name: str
    secret: str
    config: bytes | None
    invalid: str | None
    paused: bool
    generation: int
    tls_assets: tuple[dict[str, str], ...] = ()
    """The shards prometheus-<name>-tls-assets-<n> must hold (plain values), when the config is valid."""


def expected_state(kube: FakeKube) -> list[Expected]:
    """What ``generate`` gives for every PrometheusConfig in the server's final state."""
    sms, pms, namespaces = kube.list(SMS), kube.list(PMS), kube.list("namespaces")
    out = []
    for pc in kube.list(PCS):
        meta = pc["metadata"]
        spec = pc.get("spec") or {}
        config: bytes | None = None
        invalid: str | None = None
        shards: tuple[dict[str, str], ...] = ()
        try:
            generated = g.generate(pc, sms, pms, namespaces, kube.list("secrets", meta["namespace"]))  # type: ignore[arg-type]
            config = generated.config
            shards = tuple(g.shard_tls_assets(dict(generated.tls_assets)))
        except g.InvalidConfig as exc:
            invalid = str(exc)
        out.append(
            Expected(
                meta["namespace"],
                meta["name"],
                g.secret_name(pc),  # type: ignore[arg-type]
                config,
                invalid,
                spec.get("paused") is True,
                int(meta["generation"]),
                shards,
            )
        )
    return out


def secret_config(secret: dict[str, Any]) -> bytes:
    """The uncompressed config in an operator Secret."""
    return gzip.decompress(base64.b64decode(secret["data"][g.SECRET_KEY]))


def mismatches(kube: FakeKube) -> list[str]:
    """Every way the server's state differs from what the operator must have written; [] when exact."""
    problems = []
    expected = expected_state(kube)
    wanted = {(e.namespace, e.secret) for e in expected}
    for e in expected:
        pc = kube.get(PCS, e.namespace, e.name)
        status = pc.get("status") or {}
        conditions = {c.get("type"): c for c in status.get("conditions") or []}
        secret = kube.find("secrets", e.namespace, e.secret)
        where = f"{e.namespace}/{e.name}"
        if e.paused:
            continue
        if e.invalid is not None:
            condition = conditions.get("Reconciled") or {}
            if condition.get("status") != "False" or condition.get("reason") != "InvalidConfig":
                problems.append(f"{where}: malformed ({e.invalid}) but condition {condition}")
            continue
        assert e.config is not None
        if secret is None:
            problems.append(f"{where}: no Secret {e.secret}")
            continue
        if secret_config(secret) != e.config:
            problems.append(f"{where}: Secret {e.secret} holds another config than generate gives")
        owners = [
            o.get("uid") for o in secret["metadata"].get("ownerReferences") or [] if o.get("controller")
        ]
        if owners != [pc["metadata"]["uid"]]:
            problems.append(f"{where}: Secret {e.secret} is controlled by {owners}")
        if status.get("configHash") != g.config_hash(e.config):
            problems.append(f"{where}: status.configHash is stale")
        if status.get("observedGeneration") != e.generation:
            problems.append(
                f"{where}: observedGeneration {status.get('observedGeneration')} != {e.generation}"
            )
        if (conditions.get("Reconciled") or {}).get("status") != "True":
            problems.append(f"{where}: condition {conditions.get('Reconciled')}")
        for index, shard in enumerate(e.tls_assets):
            name = g.tls_assets_secret_name(e.name, index)
            assets = kube.find("secrets", e.namespace, name)
            data = {k: base64.b64decode(v).decode() for k, v in ((assets or {}).get("data") or {}).items()}
            if assets is None or data != shard:
                problems.append(f"{where}: Secret {name} does not hold the TLS assets generate gives")
    # A paused or malformed PrometheusConfig keeps what it had, TLS assets included.
    kept = {(e.namespace, e.secret) for e in expected if e.invalid is not None or e.paused}
    kept |= {
        (secret["metadata"]["namespace"], secret["metadata"]["name"])
        for e in expected
        if e.invalid is not None or e.paused
        for secret in kube.list("secrets", e.namespace)
        if secret["metadata"]["name"].startswith(f"prometheus-{e.name}-tls-assets-")
    }
    wanted |= {
        (e.namespace, g.tls_assets_secret_name(e.name, i)) for e in expected for i in range(len(e.tls_assets))
    }
    for secret in kube.list("secrets"):
        meta = secret["metadata"]
        key = (meta["namespace"], meta["name"])
        if (meta.get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE and key not in wanted | kept:
            problems.append(f"stray operator Secret {key[0]}/{key[1]}")
    return problems


def overlapping_writers(writes: list[Write], operators: set[str]) -> list[str]:
    """Writes by an operator (request identity = its Lease identity) other than the Lease's holder at
    that moment; the Lease's own writes, which are the election, are the exception."""
    holder: str | None = None
    problems = []
    for w in writes:
        if w.resource == LEASES:
            holder = (w.object.get("spec") or {}).get("holderIdentity")
            continue
        if w.identity in operators and w.identity != holder:
            problems.append(
                f"{w.identity} wrote {w.verb} {w.resource} {w.namespace}/{w.name} while {holder} led"
            )
    return problems
