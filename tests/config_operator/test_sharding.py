"""spec.shards: the rules at the end of every job, and how additionalScrapeConfigs jobs get them."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml

from config_operator.generate import InvalidConfig, generate
from config_operator.generate.sharding import shard_additional_job, sharding_rules, shards_of

# Written out by hand from prometheus-operator 0.93's appendShardingRelabelingWithLabel.
RULES_3 = [
    {
        "source_labels": ["__address__", "__tmp_hash"],
        "target_label": "__tmp_hash",
        "regex": "(.+);",
        "replacement": "$1",
        "action": "replace",
    },
    {"source_labels": ["__tmp_hash"], "target_label": "__tmp_hash", "modulus": 3, "action": "hashmod"},
    {"source_labels": ["__tmp_hash", "__tmp_disable_sharding"], "regex": "$(SHARD);|.+;.+", "action": "keep"},
]


def _pc(**spec: Any) -> dict[str, Any]:
    return {"kind": "PrometheusConfig", "metadata": {"name": "main", "namespace": "monitoring"}, "spec": spec}


def _sm() -> dict[str, Any]:
    return {
        "kind": "ServiceMonitor",
        "metadata": {"name": "web", "namespace": "monitoring"},
        "spec": {"selector": {}, "endpoints": [{"port": "metrics"}, {"port": "http"}]},
    }


def _secret(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    text = yaml.safe_dump(jobs, sort_keys=False)
    return {
        "kind": "Secret",
        "metadata": {"name": "extra", "namespace": "monitoring"},
        "data": {"jobs.yaml": base64.b64encode(text.encode()).decode()},
    }


def _jobs(pc: dict[str, Any], secrets: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    generated = generate(pc, [_sm()], [], [], secrets or [])
    return list(yaml.safe_load(generated.config)["scrape_configs"])


def test_the_rules_are_prometheus_operators() -> None:
    assert sharding_rules(3) == RULES_3


@pytest.mark.parametrize(("shards", "modulus"), [(None, 1), (1, 1), (3, 3), (12, 12)])
def test_every_monitor_job_ends_with_the_rules(shards: int | None, modulus: int) -> None:
    spec: dict[str, Any] = {"serviceMonitorSelector": {}}
    if shards is not None:
        spec["shards"] = shards
    for job in _jobs(_pc(**spec)):
        tail = job["relabel_configs"][-3:]
        assert tail == sharding_rules(modulus)
        assert tail[1]["modulus"] == modulus
        # Nothing generated comes after them: they decide on the final __address__.
        assert [r for r in job["relabel_configs"] if r.get("action") == "hashmod"] == [tail[1]]


def test_one_shard_is_the_default_and_gives_the_same_bytes() -> None:
    implicit = generate(_pc(serviceMonitorSelector={}), [_sm()], [], [], [])
    explicit = generate(_pc(serviceMonitorSelector={}, shards=1), [_sm()], [], [], [])
    assert implicit.config == explicit.config


@pytest.mark.parametrize("bad", [0, -1, "3", 2.5, True])
def test_a_bad_shard_count_is_an_invalid_config(bad: Any) -> None:
    with pytest.raises(InvalidConfig, match=r"spec\.shards"):
        shards_of({"shards": bad})


STATIC = {"job_name": "node", "static_configs": [{"targets": ["10.0.0.1:9100"]}]}
RELABELED = {
    "job_name": "relabeled",
    "relabel_configs": [{"source_labels": ["__address__"], "target_label": "instance"}],
    "scrape_interval": "1m",
    "static_configs": [{"targets": ["10.0.0.2:9100"]}],
}
HASHES = {
    "job_name": "own",
    "relabel_configs": [
        {"source_labels": ["__address__"], "target_label": "__tmp_h", "modulus": 2, "action": "hashmod"},
        {"source_labels": ["__tmp_h"], "regex": "$(SHARD)", "action": "keep"},
    ],
    "static_configs": [{"targets": ["10.0.0.3:9100"]}],
}


@pytest.mark.parametrize(
    ("job", "shards", "expected"),
    [
        # One shard: the user's job exactly as written.
        (STATIC, 1, STATIC),
        (RELABELED, 1, RELABELED),
        (HASHES, 1, HASHES),
        # Several: the rules appended, relabel_configs moved to the end, the rest untouched.
        (STATIC, 3, {**STATIC, "relabel_configs": RULES_3}),
        (
            RELABELED,
            3,
            {
                "job_name": "relabeled",
                "scrape_interval": "1m",
                "static_configs": [{"targets": ["10.0.0.2:9100"]}],
                "relabel_configs": [*RELABELED["relabel_configs"], *RULES_3],  # type: ignore[misc]
            },
        ),
        # A job with its own hashmod keeps its rules, moved to the end.
        (
            HASHES,
            3,
            {
                "job_name": "own",
                "static_configs": HASHES["static_configs"],
                "relabel_configs": HASHES["relabel_configs"],
            },
        ),
    ],
    ids=["static-1", "relabeled-1", "hashes-1", "static-3", "relabeled-3", "hashes-3"],
)
def test_additional_jobs(job: dict[str, Any], shards: int, expected: dict[str, Any]) -> None:
    got = shard_additional_job(dict(job), shards)
    assert got == expected
    assert list(got) == list(expected), "key order is part of the output"


def test_additional_jobs_through_generate() -> None:
    spec = {
        "serviceMonitorSelector": {},
        "shards": 2,
        "additionalScrapeConfigs": {"name": "extra", "key": "jobs.yaml"},
    }
    jobs = {j["job_name"]: j for j in _jobs(_pc(**spec), [_secret([STATIC, HASHES])])}
    assert jobs["node"]["relabel_configs"] == sharding_rules(2)
    assert jobs["own"]["relabel_configs"] == HASHES["relabel_configs"]


def test_a_malformed_additional_relabel_list_is_an_invalid_config() -> None:
    with pytest.raises(InvalidConfig, match="relabel_configs must be a list"):
        shard_additional_job({"job_name": "x", "relabel_configs": {"a": 1}}, 2)
