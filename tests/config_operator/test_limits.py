"""Scrape limits: prometheus-operator 0.93's precedence between a monitor's limit, the enforced one and
the global one, across the versions where it changes (2.45 moved the defaults into the global section).

The expectations are written from prometheus-operator's getLimit / appendGlobalLimits /
getLowerByteSize, not derived from our code."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from config_operator.generate import InvalidConfig, generate
from config_operator.generate.limits import SPEC_LIMIT_FIELDS, JobLimits, apply_job_limits, byte_size
from config_operator.generate.spec import SPEC_FIELDS


def _pc(**spec: Any) -> dict[str, Any]:
    return {
        "kind": "PrometheusConfig",
        "metadata": {"name": "main", "namespace": "monitoring"},
        "spec": {"serviceMonitorSelector": {}, **spec},
    }


def _sm(**spec: Any) -> dict[str, Any]:
    return {
        "kind": "ServiceMonitor",
        "metadata": {"name": "web", "namespace": "monitoring"},
        "spec": {"selector": {}, "endpoints": [{"port": "metrics"}], **spec},
    }


def _out(
    pc_spec: dict[str, Any], sm_spec: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], tuple[str, ...]]:
    generated = generate(_pc(**pc_spec), [_sm(**sm_spec)], [], [], [])
    config = yaml.safe_load(generated.config)
    (job,) = config["scrape_configs"]
    return config["global"], job, generated.warnings


def test_every_limit_field_is_a_spec_field() -> None:
    assert SPEC_LIMIT_FIELDS <= SPEC_FIELDS


# (version, enforced, monitor's own, job's sample_limit, global sample_limit)
SAMPLE_LIMIT = [
    # Nothing enforced: the monitor's own value, whatever the version.
    ("2.42.0", None, None, None, None),
    ("2.42.0", None, 500, 500, None),
    ("2.42.0", None, 0, 0, None),
    ("2.50.0", None, 500, 500, None),
    # Enforced, monitor under it: its own.
    ("2.42.0", 1000, 500, 500, None),
    ("2.50.0", 1000, 500, 500, 1000),
    # Enforced, monitor over it: capped.
    ("2.42.0", 1000, 5000, 1000, None),
    ("2.50.0", 1000, 5000, 1000, 1000),
    # Enforced, monitor without one (or 0): written into the job before 2.45, left to the global after.
    ("2.42.0", 1000, None, 1000, None),
    ("2.42.0", 1000, 0, 1000, None),
    ("2.44.0", 1000, None, 1000, None),
    ("2.45.0", 1000, None, None, 1000),
    ("2.50.0", 1000, 0, None, 1000),
    (None, 1000, None, 1000, None),  # the default target: 2.42.0
    # An enforced 0 enforces nothing.
    ("2.50.0", 0, 500, 500, None),
]


@pytest.mark.parametrize(("version", "enforced", "own", "job_value", "global_value"), SAMPLE_LIMIT)
def test_sample_limit_precedence(
    version: str | None,
    enforced: int | None,
    own: int | None,
    job_value: int | None,
    global_value: int | None,
) -> None:
    pc: dict[str, Any] = {} if version is None else {"version": version}
    if enforced is not None:
        pc["enforcedSampleLimit"] = enforced
    sm = {} if own is None else {"sampleLimit": own}
    glob, job, _ = _out(pc, sm)
    assert job.get("sample_limit") == job_value
    assert glob.get("sample_limit") == global_value


@pytest.mark.parametrize(
    ("spec", "expected", "warned"),
    [
        ({"sampleLimit": 500}, 500, False),
        ({"sampleLimit": 500, "enforcedSampleLimit": 1000}, 500, False),
        ({"sampleLimit": 5000, "enforcedSampleLimit": 1000}, 1000, True),  # capped, with a warning
        ({"enforcedSampleLimit": 1000}, 1000, False),
        ({"sampleLimit": 0, "enforcedSampleLimit": 1000}, 1000, False),
    ],
)
def test_global_limit_is_capped_by_the_enforced_one(
    spec: dict[str, Any], expected: int, warned: bool
) -> None:
    glob, _, warnings = _out({"version": "2.45.0", **spec}, {})
    assert glob["sample_limit"] == expected
    assert any("greater than spec.enforcedSampleLimit" in w for w in warnings) == warned


@pytest.mark.parametrize(
    ("field", "key", "job_minimum", "global_minimum"),
    [
        ("targetLimit", "target_limit", "2.21.0", "2.45.0"),
        ("labelLimit", "label_limit", "2.27.0", "2.45.0"),
        ("labelNameLengthLimit", "label_name_length_limit", "2.27.0", "2.45.0"),
        ("labelValueLengthLimit", "label_value_length_limit", "2.27.0", "2.45.0"),
        ("keepDroppedTargets", "keep_dropped_targets", "2.47.0", "2.47.0"),
    ],
)
def test_every_limit_is_version_gated(field: str, key: str, job_minimum: str, global_minimum: str) -> None:
    enforced = "enforced" + field[0].upper() + field[1:]
    # Below the job's minimum: left out, with a warning naming the field.
    major, minor, _ = (int(p) for p in job_minimum.split("."))
    older = f"{major}.{minor - 1}.0"
    glob, job, warnings = _out({"version": older, field: 7, enforced: 9}, {field: 5})
    assert key not in job and key not in glob
    assert (
        f"ServiceMonitor monitoring/web: {key} left out: Prometheus {older} does not support it (needs {job_minimum})"
        in warnings
    )
    # At it: the job has the monitor's value.
    _, job, _ = _out({"version": job_minimum}, {field: 5})
    assert job[key] == 5
    # The global section from its own minimum on.
    glob, _, _ = _out({"version": global_minimum, field: 7}, {})
    assert glob[key] == 7


@pytest.mark.parametrize(
    ("enforced", "own", "job_value", "global_value"),
    [
        (None, "1MB", "1MB", None),
        ("4MB", "1MB", "1MB", "4MB"),
        ("4MB", "10MiB", "4MB", "4MB"),  # compared in bytes: KB and KiB are both 1024
        ("4MB", "4096KiB", "4096KiB", "4MB"),  # equal: the monitor's own spelling
        ("4MB", None, "4MB", "4MB"),
        ("1GB", "1.5GB", "1GB", "1GB"),
    ],
)
def test_body_size_limit(
    enforced: str | None, own: str | None, job_value: str | None, global_value: str | None
) -> None:
    pc: dict[str, Any] = {"version": "2.45.0"}
    if enforced is not None:
        pc["enforcedBodySizeLimit"] = enforced
    glob, job, _ = _out(pc, {} if own is None else {"bodySizeLimit": own})
    assert job.get("body_size_limit") == job_value
    assert glob.get("body_size_limit") == global_value


def test_global_body_size_prefers_the_spec_value() -> None:
    glob, _, _ = _out({"version": "2.45.0", "bodySizeLimit": "64MB", "enforcedBodySizeLimit": "4MB"}, {})
    assert glob["body_size_limit"] == "64MB"  # prometheus-operator does not cap it


@pytest.mark.parametrize(
    ("value", "size"),
    [("0", 0), ("512B", 512), ("1KB", 1024), ("1KiB", 1024), ("1.5MB", 1.5 * 2**20), ("2GiB", 2 * 2**30)],
)
def test_byte_size(value: str, size: float) -> None:
    assert byte_size(value) == size


@pytest.mark.parametrize("bad", ["10", "10 MB", "1XB", "-1MB", "", "MB"])
def test_byte_size_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="not a byte size"):
        byte_size(bad)


@pytest.mark.parametrize(
    "spec",
    [
        {"enforcedSampleLimit": -1},
        {"sampleLimit": "100"},
        {"enforcedTargetLimit": True},
        {"enforcedBodySizeLimit": "4 MB"},
        {"bodySizeLimit": 4096},
    ],
)
def test_malformed_prometheusconfig_limits_are_invalid(spec: dict[str, Any]) -> None:
    with pytest.raises(InvalidConfig, match=r"spec\.(enforced)?[A-Za-z]+Limit"):
        generate(_pc(**spec), [], [], [], [])


def test_limits_go_where_prometheus_operator_puts_them() -> None:
    job = {
        "job_name": "j",
        "relabel_configs": [],
        "scrape_protocols": ["PrometheusProto"],
        "metric_relabel_configs": [],
    }
    apply_job_limits(job, JobLimits((("sample_limit", 1), ("target_limit", 2)), "1MB"))
    assert list(job) == [
        "job_name",
        "relabel_configs",
        "sample_limit",
        "target_limit",
        "scrape_protocols",
        "body_size_limit",
        "metric_relabel_configs",
    ]
    job = {"job_name": "j", "relabel_configs": []}
    apply_job_limits(job, JobLimits((("sample_limit", 1),), "1MB"))
    assert list(job) == ["job_name", "relabel_configs", "sample_limit", "body_size_limit"]
