"""``spec.shards``: split the targets between N Prometheus servers, as prometheus-operator 0.93 does. No I/O.

Every generated job ends with three relabeling rules: copy ``__address__`` into ``__tmp_hash`` unless a
relabeling already set it, ``hashmod`` it by N, and keep the target only where the result is
``$(SHARD)`` (which config-reloader expands in each pod) or where ``__tmp_disable_sharding`` is set.
Monitor jobs get them even with one shard, so the output does not change shape when N changes from 1
and stays byte-stable at N = 1 (``SHARD`` is then ``0`` in every pod). ``additionalScrapeConfigs`` jobs
are the user's own: they get the rules only with N > 1 and only when they hash nothing themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from config_operator.generate.common import InvalidConfig

HASH_LABEL = "__tmp_hash"
DISABLE_LABEL = "__tmp_disable_sharding"
SHARD_VAR = "SHARD"


def shards_of(spec: Mapping[str, Any]) -> int:
    """``spec.shards``, 1 when absent; InvalidConfig unless it is an integer of at least 1."""
    value = spec.get("shards")
    if value is None:
        return 1
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidConfig(f"spec.shards must be an integer of at least 1, not {value!r}")
    return value


def sharding_rules(shards: int, source_label: str = "__address__") -> list[dict[str, Any]]:
    """The three rules, in prometheus-operator's key order."""
    return [
        {
            "source_labels": [source_label, HASH_LABEL],
            "target_label": HASH_LABEL,
            "regex": "(.+);",
            "replacement": "$1",
            "action": "replace",
        },
        {"source_labels": [HASH_LABEL], "target_label": HASH_LABEL, "modulus": shards, "action": "hashmod"},
        {
            "source_labels": [HASH_LABEL, DISABLE_LABEL],
            "regex": f"$({SHARD_VAR});|.+;.+",
            "action": "keep",
        },
    ]


def shard_monitor_job(job: dict[str, Any], shards: int, source_label: str = "__address__") -> None:
    """Append the rules to a generated job's relabel_configs (the last relabelings it has).

    A Probe's jobs hash ``__param_target`` (what is probed), not the prober's address, as
    prometheus-operator does.
    """
    job["relabel_configs"] = [*job.get("relabel_configs", []), *sharding_rules(shards, source_label)]


def shard_additional_job(job: dict[str, Any], shards: int) -> dict[str, Any]:
    """An additionalScrapeConfigs job as prometheus-operator rewrites it for ``shards``.

    With one shard it is left exactly as given. Otherwise its relabel_configs move to the end of the
    job (prometheus-operator rebuilds it that way) and gain the rules, unless one of them is already a
    hashmod: the user shards that job their own way.
    """
    if shards == 1:
        return job
    where = f"spec.additionalScrapeConfigs: job {job.get('job_name')!r}"
    relabelings = job.get("relabel_configs")
    if relabelings is None:
        relabelings = []
    if not isinstance(relabelings, list) or not all(isinstance(r, Mapping) for r in relabelings):
        raise InvalidConfig(f"{where}: relabel_configs must be a list of mappings")
    if not any(r.get("action") == "hashmod" for r in relabelings):
        relabelings = [*relabelings, *sharding_rules(shards)]
    rebuilt = {k: v for k, v in job.items() if k != "relabel_configs"}
    rebuilt["relabel_configs"] = relabelings
    return rebuilt
